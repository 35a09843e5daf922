package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crypto/tls"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/notify"
	"github.com/knib/knib/internal/service/notify/notifytest"
	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/sqlstore"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

type fixture struct {
	ctx   context.Context
	st    *sqlstore.DB
	clk   *clock.Fake
	svc   *notify.Service
	admin domain.Principal
	vm    domain.VM
	acc   domain.Account
	zone  domain.Zone
	hook  *notifytest.Webhook
	smtp  *notifytest.SMTP
}

func setup(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{ctx: ctx, st: st, clk: clock.NewFake(t0)}
	f.acc = domain.Account{ID: domain.NewID(), Name: "admin", Created: t0}
	must(t, st.CreateAccount(ctx, f.acc))
	f.zone, err = st.EnsureZone(ctx, "default")
	must(t, err)
	h, err := st.UpsertHost(ctx, domain.Host{Name: "localhost", ZoneID: f.zone.ID, URI: "qemu:///system", LastSeen: t0, Local: true})
	must(t, err)
	f.vm = domain.VM{ID: domain.NewID(), Name: "web1", State: domain.VMRunning}
	must(t, st.SyncHostVMs(ctx, h.ID, []domain.VM{f.vm}, f.acc.ID, t0))
	cfg := notify.Config{AgentDownAfter: 5 * time.Minute, StorageFreePercent: 10, MaxAttempts: 3}
	f.svc = notify.New(st, f.clk, slog.New(slog.NewTextHandler(io.Discard, nil)), func(context.Context) (notify.Config, error) { return cfg, nil })
	f.admin = domain.Principal{AccountID: f.acc.ID, Role: domain.RoleAdmin}
	f.hook = notifytest.StartWebhook(t, "hook-secret")
	f.smtp = notifytest.StartSMTP(t, "knib", "mail-secret")
	f.svc.SetSender(store.NotifySMTP, notify.Mailer{TLS: &tls.Config{RootCAs: f.smtp.RootCAs}})
	_, err = f.svc.AddTarget(ctx, f.admin, notify.TargetSpec{Name: "hook", Webhook: f.hook.URL, Secret: "hook-secret"})
	must(t, err)
	_, err = f.svc.AddTarget(ctx, f.admin, notify.TargetSpec{Name: "mail", SMTP: f.smtp.Addr, From: "knib@example.org",
		To: []string{"ops@example.org"}, User: "knib", Secret: "mail-secret"})
	must(t, err)
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) round(t *testing.T) notify.Result {
	t.Helper()
	r, err := f.svc.Evaluate(f.ctx)
	must(t, err)
	if _, err := f.svc.Send(f.ctx, "me"); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestConditionNotifiesOnceAndResolvesOnce: a VM in BackupError reaches
// the webhook (signature checked) and the mailbox (STARTTLS, AUTH) once
// however many evaluations see it, and once more as resolved when it
// clears; a rule for another zone gets nothing.
func TestConditionNotifiesOnceAndResolvesOnce(t *testing.T) {
	f := setup(t)
	_, err := f.svc.AddRule(f.ctx, f.admin, notify.RuleSpec{Target: "hook"})
	must(t, err)
	_, err = f.svc.AddRule(f.ctx, f.admin, notify.RuleSpec{Target: "mail", Events: []string{notify.KindVMError}, Zone: "default"})
	must(t, err)
	other, err := f.st.EnsureZone(f.ctx, "east")
	must(t, err)
	_, err = f.svc.AddTarget(f.ctx, f.admin, notify.TargetSpec{Name: "east", Webhook: f.hook.URL + "/east", Secret: "hook-secret"})
	must(t, err)
	_, err = f.svc.AddRule(f.ctx, f.admin, notify.RuleSpec{Target: "east", Zone: other.Name})
	must(t, err)

	must(t, f.st.SetVMWorkState(f.ctx, f.vm.ID, domain.VMBackupError))
	must(t, f.st.SetVMError(f.ctx, f.vm.ID, "qemu died"))
	if r := f.round(t); r.Fired != 1 {
		t.Fatalf("first round: %+v", r)
	}
	for range 3 {
		f.clk.Advance(30 * time.Second)
		if r := f.round(t); r.Fired != 0 || r.Active != 1 {
			t.Fatalf("later round: %+v", r)
		}
	}
	hooks, mails := f.hook.Hooks(), f.smtp.Mails()
	if len(hooks) != 1 || len(mails) != 1 || f.hook.Rejected() != 0 {
		t.Fatalf("hooks %d (rejected %d), mails %d", len(hooks), f.hook.Rejected(), len(mails))
	}
	var m notify.Message
	must(t, json.Unmarshal(hooks[0].Body, &m))
	if m.Event != "firing" || m.Key != "vm.error/"+f.vm.ID || m.Details == nil || m.Details.VM != "web1" || m.Details.Reason != "qemu died" || m.ZoneID != f.zone.ID {
		t.Fatalf("webhook message: %s", hooks[0].Body)
	}
	mail := mails[0]
	if !mail.TLS || mail.User != "knib" || mail.From != "knib@example.org" || len(mail.To) != 1 || mail.To[0] != "ops@example.org" {
		t.Fatalf("mail envelope: %+v", mail)
	}
	if mail.Subject != "[knib] FIRING vm.error: VM web1 is in BackupError" || !strings.Contains(mail.Body, "Reason: qemu died") {
		t.Fatalf("mail: %q\n%s", mail.Subject, mail.Body)
	}

	must(t, f.st.SetVMWorkState(f.ctx, f.vm.ID, ""))
	if r := f.round(t); r.Resolved != 1 {
		t.Fatalf("resolve round: %+v", r)
	}
	f.round(t)
	hooks, mails = f.hook.Hooks(), f.smtp.Mails()
	if len(hooks) != 2 || hooks[1].Event != "resolved" || len(mails) != 2 || !strings.HasPrefix(mails[1].Subject, "[knib] RESOLVED vm.error") {
		t.Fatalf("after resolve: hooks %+v, mails %d", hooks, len(mails))
	}
	log, err := f.svc.Log(f.ctx, f.admin, store.DeliveriesDelivered, 0)
	must(t, err)
	if len(log) != 4 {
		t.Fatalf("log: %+v", log)
	}
}

// TestValidationFailureLinksScreenshot: a NotValid backup fires with its
// reason and the screenshot's URL; a re-hash that found a change is its
// own kind.
func TestValidationFailureLinksScreenshot(t *testing.T) {
	f := setup(t)
	_, err := f.svc.AddRule(f.ctx, f.admin, notify.RuleSpec{Target: "mail"})
	must(t, err)
	png := []byte("\x89PNG\r\n\x1a\n not really a picture, but its bytes must arrive intact")
	f.svc.SetScreenshots(func(_ context.Context, id string) ([]byte, error) { return png, nil })
	mk := func(n int) domain.Backup {
		b := domain.Backup{ID: domain.NewID(), VMID: f.vm.ID, VMName: f.vm.Name, AccountID: f.acc.ID, Type: domain.BackupFull, Position: n,
			Status: domain.BackupBackedUp, Dir: "backups/web1", Plan: "{}", Created: t0.Add(time.Duration(n) * time.Minute), Updated: t0}
		must(t, f.st.CreateBackup(f.ctx, b))
		return b
	}
	b1, b2 := mk(1), mk(2)
	must(t, f.st.SetValidation(f.ctx, b1.ID, domain.NotValid, "no answer from the guest agent", nil, true, nil))
	must(t, f.st.SetValidation(f.ctx, b2.ID, domain.NotValid, domain.DamagedReason+"disk0 changed", nil, false, nil))
	if r := f.round(t); r.Fired != 2 {
		t.Fatalf("round: %+v", r)
	}
	var notValid, changed *notifytest.Mail
	for _, m := range f.smtp.Mails() {
		switch {
		case strings.Contains(m.Subject, "validation.notvalid"):
			notValid = &m
		case strings.Contains(m.Subject, "backup.changed"):
			changed = &m
		}
	}
	if notValid == nil || changed == nil {
		t.Fatalf("mails: %+v", f.smtp.Mails())
	}
	if !strings.Contains(notValid.Body, "Reason: no answer from the guest agent") ||
		!strings.Contains(notValid.Body, "Screenshot: /api/v1/backups/"+b1.ID+"/screenshot") {
		t.Fatalf("not valid mail: %s", notValid.Body)
	}
	if len(notValid.Attachments) != 1 || notValid.Attachments[0].Type != "image/png" || string(notValid.Attachments[0].Data) != string(png) ||
		notValid.Attachments[0].Name != "screenshot-"+b1.ID+".png" {
		t.Fatalf("attachments: %+v", notValid.Attachments)
	}
	if !strings.Contains(changed.Body, "disk0 changed") || strings.Contains(changed.Body, "Screenshot") || len(changed.Attachments) != 0 {
		t.Fatalf("changed mail: %s", changed.Body)
	}
}

// TestTargetDownIsRetriedAndVisible: deliveries to a failing webhook are
// retried with backoff, shown pending with the error, delivered once it
// is back, and failed for good after the last attempt when it is not.
func TestTargetDownIsRetriedAndVisible(t *testing.T) {
	f := setup(t)
	_, err := f.svc.AddRule(f.ctx, f.admin, notify.RuleSpec{Target: "hook"})
	must(t, err)
	_, err = f.svc.AddTarget(f.ctx, f.admin, notify.TargetSpec{Name: "dead", Webhook: "http://127.0.0.1:1/x", Secret: "s"})
	must(t, err)
	_, err = f.svc.AddRule(f.ctx, f.admin, notify.RuleSpec{Target: "dead"})
	must(t, err)
	f.hook.SetFailing(true)
	must(t, f.st.SetVMWorkState(f.ctx, f.vm.ID, domain.VMRestoreError))
	f.round(t)
	pending, err := f.svc.Log(f.ctx, f.admin, store.DeliveriesPending, 0)
	must(t, err)
	if len(pending) != 2 || pending[0].Attempts != 1 || pending[0].LastError == "" || pending[1].LastError == "" {
		t.Fatalf("pending: %+v", pending)
	}
	// Not due again before the backoff.
	f.round(t)
	if p, _ := f.svc.Log(f.ctx, f.admin, store.DeliveriesPending, 0); p[0].Attempts != 1 {
		t.Fatalf("retried before backoff: %+v", p)
	}
	f.hook.SetFailing(false)
	f.clk.Advance(40 * time.Second)
	f.round(t)
	if hooks := f.hook.Hooks(); len(hooks) != 1 || hooks[0].Event != "firing" {
		t.Fatalf("hooks: %+v", hooks)
	}
	f.clk.Advance(2 * time.Minute)
	f.round(t)
	failed, err := f.svc.Log(f.ctx, f.admin, store.DeliveriesFailed, 0)
	must(t, err)
	if len(failed) != 1 || failed[0].Attempts != 3 || !strings.Contains(failed[0].LastError, "refused") {
		t.Fatalf("failed: %+v", failed)
	}
	if err := f.svc.TestTarget(f.ctx, f.admin, "dead"); err == nil {
		t.Fatalf("test of a dead target passed")
	}
	if err := f.svc.TestTarget(f.ctx, f.admin, "mail"); err != nil {
		t.Fatalf("test mail: %v", err)
	}
}

// TestAuthLogin: a server offering only AUTH LOGIN gets it, and a wrong
// password is an error the test command reports.
func TestAuthLogin(t *testing.T) {
	f := setup(t)
	login := notifytest.StartSMTP(t, "knib", "pw", "LOGIN")
	f.svc.SetSender(store.NotifySMTP, notify.Mailer{TLS: &tls.Config{RootCAs: login.RootCAs}})
	for name, pw := range map[string]string{"good": "pw", "bad": "nope"} {
		_, err := f.svc.AddTarget(f.ctx, f.admin, notify.TargetSpec{Name: name, SMTP: login.Addr, From: "knib@example.org",
			To: []string{"ops@example.org"}, User: "knib", Secret: pw})
		must(t, err)
	}
	must(t, f.svc.TestTarget(f.ctx, f.admin, "good"))
	if err := f.svc.TestTarget(f.ctx, f.admin, "bad"); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Fatalf("a wrong password: %v", err)
	}
	if m := login.Mails(); len(m) != 1 || !m[0].TLS || m[0].User != "knib" || m[0].Subject != "[knib] test notification" {
		t.Fatalf("mails: %+v", m)
	}
}

// TestDailyDigest: a digest rule sends nothing at once and, the next day,
// one digest listing the day's conditions, once.
func TestDailyDigest(t *testing.T) {
	f := setup(t)
	f.clk.Advance(-24 * time.Hour) // rule made the day before
	_, err := f.svc.AddRule(f.ctx, f.admin, notify.RuleSpec{Target: "mail", Digest: "daily"})
	must(t, err)
	f.clk.Advance(24 * time.Hour)
	must(t, f.st.SetVMWorkState(f.ctx, f.vm.ID, domain.VMBackupError))
	if r := f.round(t); r.Fired != 1 || r.Digests != 0 || len(f.smtp.Mails()) != 0 {
		t.Fatalf("same day: %+v, %d mails", r, len(f.smtp.Mails()))
	}
	f.clk.Advance(15 * time.Hour) // 01:00 the next day
	if r := f.round(t); r.Digests != 1 {
		t.Fatalf("next day: %+v", r)
	}
	if r := f.round(t); r.Digests != 0 {
		t.Fatalf("digest twice: %+v", r)
	}
	mails := f.smtp.Mails()
	if len(mails) != 1 || mails[0].Subject != "[knib] daily digest 2026-12-03: 1 conditions" || !strings.Contains(mails[0].Body, "vm.error/"+f.vm.ID) {
		t.Fatalf("digest: %+v", mails)
	}
}

// TestBadInputChangesNothing: invalid targets and rules are refused, and
// users may not manage notifications.
func TestBadInputChangesNothing(t *testing.T) {
	f := setup(t)
	for _, spec := range []notify.TargetSpec{
		{Name: "x", Webhook: "ftp://h/x", Secret: "s"},
		{Name: "x", Webhook: "https://h/x"},
		{Name: "bad name", Webhook: "https://h/x", Secret: "s"},
		{Name: "x", SMTP: "h", From: "a@b", To: []string{"c@d"}},
		{Name: "x", SMTP: "h:25", From: "a@b", To: []string{"c@d\r\nBcc: e@f"}},
		{Name: "x", SMTP: "h:25", From: "a@b", To: []string{"c@d"}, StartTLS: "maybe"},
		{Name: "x", SMTP: "h:25", From: "a@b", To: []string{"c@d"}, User: "u"},
		{Name: "hook", Webhook: "https://h/x", Secret: "s"},
	} {
		if _, err := f.svc.AddTarget(f.ctx, f.admin, spec); err == nil {
			t.Errorf("accepted %+v", spec)
		}
	}
	for _, spec := range []notify.RuleSpec{{Target: "nope"}, {Target: "hook", Events: []string{"vm.bored"}}, {Target: "hook", Zone: "nope"}, {Target: "hook", Digest: "weekly"}} {
		if _, err := f.svc.AddRule(f.ctx, f.admin, spec); !domain.IsInvalid(err) {
			t.Errorf("rule %+v: %v", spec, err)
		}
	}
	user := domain.Principal{AccountID: f.acc.ID, Role: domain.RoleUser}
	if _, err := f.svc.Targets(f.ctx, user); err == nil {
		t.Errorf("a user listed targets")
	}
	ts, err := f.svc.Targets(f.ctx, f.admin)
	must(t, err)
	rs, err := f.svc.Rules(f.ctx, f.admin)
	must(t, err)
	if len(ts) != 2 || len(rs) != 0 {
		t.Fatalf("targets %+v rules %+v", ts, rs)
	}
	body, _ := json.Marshal(ts)
	if strings.Contains(string(body), "secret\":\"") || strings.Contains(string(body), "mail-secret") || strings.Contains(string(body), "hook-secret") {
		t.Fatalf("a list shows a secret: %s", body)
	}
}
