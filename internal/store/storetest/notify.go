package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// testNotify: targets and rules round-trip; a condition fires once per
// episode and resolves once, each with its deliveries; deliveries are
// claimed by one sender, finished by their claimant only, and listed by
// state; a digest id is enqueued once.
func testNotify(t *testing.T, s store.Store) {
	ctx := context.Background()
	hook := store.NotifyTarget{ID: domain.NewID(), Name: "hook", Kind: store.NotifyWebhook, URL: "https://h/x", Secret: "s3", StartTLS: "required", Created: t0}
	mail := store.NotifyTarget{ID: domain.NewID(), Name: "mail", Kind: store.NotifySMTP, Addr: "mx:587", From: "k@x", To: []string{"a@x", "b@x"}, User: "u", Secret: "pw", StartTLS: "none", Created: t0}
	must(t, s.CreateNotifyTarget(ctx, hook))
	must(t, s.CreateNotifyTarget(ctx, mail))
	wantErr(t, s.CreateNotifyTarget(ctx, store.NotifyTarget{ID: domain.NewID(), Name: "hook", Kind: store.NotifyWebhook, Created: t0}), domain.ErrConflict)
	got, err := s.NotifyTarget(ctx, "mail")
	must(t, err)
	if got.ID != mail.ID || len(got.To) != 2 || got.To[1] != "b@x" || got.Secret != "pw" || got.StartTLS != "none" || !got.Created.Equal(t0) {
		t.Fatalf("target: %+v", got)
	}
	_, err = s.NotifyTarget(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)
	rule := store.NotifyRule{ID: domain.NewID(), TargetID: mail.ID, Events: []string{"vm.error", "vm.stale"}, ZoneID: "z", Digest: true, Created: t0}
	must(t, s.CreateNotifyRule(ctx, rule))
	must(t, s.CreateNotifyRule(ctx, store.NotifyRule{ID: domain.NewID(), TargetID: hook.ID, Created: t0.Add(time.Second)}))
	rules, err := s.ListNotifyRules(ctx)
	must(t, err)
	if len(rules) != 2 || rules[0].ID != rule.ID || len(rules[0].Events) != 2 || !rules[0].Digest || rules[0].ZoneID != "z" || len(rules[1].Events) != 0 {
		t.Fatalf("rules: %+v", rules)
	}
	must(t, s.RemoveNotifyTarget(ctx, hook.ID))
	wantErr(t, s.RemoveNotifyTarget(ctx, hook.ID), domain.ErrNotFound)
	if rules, _ = s.ListNotifyRules(ctx); len(rules) != 1 {
		t.Fatalf("the removed target's rule stayed: %+v", rules)
	}
	must(t, s.RemoveNotifyRule(ctx, rule.ID))
	wantErr(t, s.RemoveNotifyRule(ctx, rule.ID), domain.ErrNotFound)
	if ts, _ := s.ListNotifyTargets(ctx); len(ts) != 1 || ts[0].Name != "mail" {
		t.Fatalf("targets: %+v", ts)
	}

	delivery := func(id, event string) store.NotifyDelivery {
		return store.NotifyDelivery{ID: id, TargetID: mail.ID, ConditionKey: "vm.error/1", Event: event, Payload: `{}`, NextAttempt: t0, Created: t0}
	}
	c := store.NotifyCondition{Key: "vm.error/1", Kind: "vm.error", ZoneID: "z", AccountID: "a", Summary: "vm a in BackupError", FirstSeen: t0}
	ok, err := s.FireCondition(ctx, c, []store.NotifyDelivery{delivery("d1", store.DeliveryFiring)})
	must(t, err)
	again, err := s.FireCondition(ctx, c, []store.NotifyDelivery{delivery("d2", store.DeliveryFiring)})
	must(t, err)
	if !ok || again {
		t.Fatalf("fire: first %v, again %v", ok, again)
	}
	active, err := s.ActiveConditions(ctx)
	must(t, err)
	if len(active) != 1 || active[0].Summary != c.Summary || active[0].Episode != 1 || !active[0].FirstSeen.Equal(t0) {
		t.Fatalf("active: %+v", active)
	}
	ok, err = s.ResolveCondition(ctx, c.Key, t0.Add(time.Hour), []store.NotifyDelivery{delivery("d3", store.DeliveryResolved)})
	must(t, err)
	again, err = s.ResolveCondition(ctx, c.Key, t0.Add(time.Hour), []store.NotifyDelivery{delivery("d4", store.DeliveryResolved)})
	must(t, err)
	if !ok || again {
		t.Fatalf("resolve: first %v, again %v", ok, again)
	}
	if active, _ = s.ActiveConditions(ctx); len(active) != 0 {
		t.Fatalf("active after resolve: %+v", active)
	}
	since, err := s.NotifyConditionsSince(ctx, t0.Add(time.Minute))
	must(t, err)
	if len(since) != 1 || !since[0].Resolved.Equal(t0.Add(time.Hour)) {
		t.Fatalf("since: %+v", since)
	}
	// It comes back: a new episode.
	c.FirstSeen = t0.Add(2 * time.Hour)
	ok, err = s.FireCondition(ctx, c, []store.NotifyDelivery{delivery("d5", store.DeliveryFiring)})
	must(t, err)
	if active, _ = s.ActiveConditions(ctx); !ok || len(active) != 1 || active[0].Episode != 2 {
		t.Fatalf("new episode: %v %+v", ok, active)
	}

	ok, err = s.EnqueueDelivery(ctx, delivery("digest/r/2026-11-27", store.DeliveryDigest))
	must(t, err)
	again, err = s.EnqueueDelivery(ctx, delivery("digest/r/2026-11-27", store.DeliveryDigest))
	must(t, err)
	if !ok || again {
		t.Fatalf("digest enqueue: %v %v", ok, again)
	}
	// d1, d3, d5 and the digest are due; two senders split them.
	now := t0.Add(3 * time.Hour)
	a, err := s.ClaimDeliveries(ctx, "A", now, now.Add(time.Minute), 10)
	must(t, err)
	b, err := s.ClaimDeliveries(ctx, "B", now, now.Add(time.Minute), 10)
	must(t, err)
	if len(a) != 4 || len(b) != 0 {
		t.Fatalf("claims: A %d, B %d", len(a), len(b))
	}
	d := a[0]
	d.Attempts, d.LastError, d.NextAttempt = 1, "connection refused", now.Add(time.Minute)
	if ok, err := s.FinishDelivery(ctx, d, "B"); err != nil || ok {
		t.Fatalf("finish by a non-claimant: %v %v", ok, err)
	}
	must2 := func(d store.NotifyDelivery) {
		t.Helper()
		if ok, err := s.FinishDelivery(ctx, d, "A"); err != nil || !ok {
			t.Fatalf("finish %s: %v %v", d.ID, ok, err)
		}
	}
	must2(d)
	a[1].Attempts, a[1].Delivered = 1, now
	must2(a[1])
	a[2].Attempts, a[2].Failed, a[2].LastError = 5, true, "gave up"
	must2(a[2])
	a[3].Attempts, a[3].Delivered = 1, now
	must2(a[3])
	// The retried one is due again a minute later, not before.
	if again, _ := s.ClaimDeliveries(ctx, "B", now, now.Add(time.Minute), 10); len(again) != 0 {
		t.Fatalf("claimed before due: %+v", again)
	}
	if later, _ := s.ClaimDeliveries(ctx, "B", now.Add(time.Minute), now.Add(2*time.Minute), 10); len(later) != 1 || later[0].ID != d.ID || later[0].LastError != "connection refused" {
		t.Fatalf("retry claim: %+v", later)
	}
	for state, want := range map[string]int{"": 4, store.DeliveriesPending: 1, store.DeliveriesDelivered: 2, store.DeliveriesFailed: 1} {
		list, err := s.ListDeliveries(ctx, store.NotifyDeliveryFilter{State: state})
		must(t, err)
		if len(list) != want {
			t.Fatalf("deliveries %q: %d, want %d", state, len(list), want)
		}
	}
	if one, _ := s.ListDeliveries(ctx, store.NotifyDeliveryFilter{Page: store.Page{Limit: 1}}); len(one) != 1 {
		t.Fatalf("limit: %+v", one)
	}
	_, err = s.ListDeliveries(ctx, store.NotifyDeliveryFilter{State: "bogus"})
	if !domain.IsInvalid(err) {
		t.Fatalf("bogus state: %v", err)
	}
}

// testNotifyRaces: several servers evaluating and sending at once — of
// racers firing one key one wins, of racers resolving it one wins, and
// each due delivery is claimed by one sender.
func testNotifyRaces(t *testing.T, s store.Store) {
	ctx := context.Background()
	target := store.NotifyTarget{ID: domain.NewID(), Name: "t", Kind: store.NotifyWebhook, URL: "https://h/x", Secret: "s", Created: t0}
	must(t, s.CreateNotifyTarget(ctx, target))
	c := store.NotifyCondition{Key: "agent.down/h1", Kind: "agent.down", FirstSeen: t0}
	d := func(i int, event string) []store.NotifyDelivery {
		return []store.NotifyDelivery{{ID: fmt.Sprintf("%s-%d", event, i), TargetID: target.ID, ConditionKey: c.Key, Event: event, Payload: "{}", NextAttempt: t0, Created: t0}}
	}
	for episode := 1; episode <= 2; episode++ {
		if wins := race(t, func(i int) (bool, error) { return s.FireCondition(ctx, c, d(i+100*episode, store.DeliveryFiring)) }); wins != 1 {
			t.Fatalf("episode %d: %d servers fired %s", episode, wins, c.Key)
		}
		if wins := race(t, func(i int) (bool, error) {
			return s.ResolveCondition(ctx, c.Key, t0.Add(time.Hour), d(i+100*episode, store.DeliveryResolved))
		}); wins != 1 {
			t.Fatalf("episode %d: %d servers resolved %s", episode, wins, c.Key)
		}
	}
	all, err := s.ListDeliveries(ctx, store.NotifyDeliveryFilter{})
	must(t, err)
	if len(all) != 4 {
		t.Fatalf("deliveries: %d, want 2 firing and 2 resolved", len(all))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	race(t, func(i int) (bool, error) {
		got, err := s.ClaimDeliveries(ctx, fmt.Sprint("owner", i), t0.Add(2*time.Hour), t0.Add(3*time.Hour), 10)
		mu.Lock()
		defer mu.Unlock()
		for _, d := range got {
			seen[d.ID]++
		}
		return len(got) > 0, err
	})
	if len(seen) != 4 {
		t.Fatalf("claimed %d of 4 deliveries: %v", len(seen), seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("delivery %s claimed %d times", id, n)
		}
	}
}
