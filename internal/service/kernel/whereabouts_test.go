package kernel

import (
	"errors"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

// Where a VM reported by several hosts lives: running before paused (a
// migration's destination until it takes over) before a definition; the
// recorded host among equals; two other hosts tied is a conflict.
func TestPickHost(t *testing.T) {
	at := func(host, state string) Sighting {
		return Sighting{HostID: host, Domain: agentapi.Domain{UUID: "u", Name: "web", State: state}}
	}
	for _, c := range []struct {
		name     string
		seen     []Sighting
		want     string // "" none found
		conflict bool
	}{
		{"nowhere", nil, "", false},
		{"on its host", []Sighting{at("A", "running")}, "A", false},
		{"migrated, undefined on A", []Sighting{at("B", "running")}, "B", false},
		{"migrated, shut-off definition left on A", []Sighting{at("A", "shutoff"), at("B", "running")}, "B", false},
		{"migrating: destination paused", []Sighting{at("A", "running"), at("B", "paused")}, "A", false},
		{"switched over, source paused", []Sighting{at("A", "paused"), at("B", "running")}, "B", false},
		{"defined on both, running on neither", []Sighting{at("B", "shutoff"), at("A", "shutoff")}, "A", false},
		{"crashed on A, defined on B", []Sighting{at("A", "crashed"), at("B", "shutoff")}, "A", false},
		{"moved by hand: defined only on B", []Sighting{at("B", "shutoff")}, "B", false},
		{"defined on two other hosts", []Sighting{at("B", "shutoff"), at("C", "shutoff")}, "", true},
		{"running on A, defined on two others", []Sighting{at("B", "shutoff"), at("A", "running"), at("C", "shutoff")}, "A", false},
	} {
		got, found, err := PickHost("A", c.seen)
		if c.conflict {
			if !errors.Is(err, domain.ErrConflict) {
				t.Errorf("%s: %+v, %v; want a conflict", c.name, got, err)
			}
			continue
		}
		if err != nil || found != (c.want != "") || got.HostID != c.want {
			t.Errorf("%s: %q found %v, %v; want %q", c.name, got.HostID, found, err, c.want)
		}
	}
}

func TestLiveRank(t *testing.T) {
	order := []string{"", "shutoff", "paused", "running"}
	for i := 1; i < len(order); i++ {
		if LiveRank(order[i-1]) >= LiveRank(order[i]) {
			t.Errorf("LiveRank(%q) >= LiveRank(%q)", order[i-1], order[i])
		}
	}
	for _, s := range []string{"crashed", "other", "shutoff"} {
		if LiveRank(s) != rankDefined {
			t.Errorf("LiveRank(%q) = %d, want a mere definition", s, LiveRank(s))
		}
	}
	if LiveRank("pmsuspended") != LiveRank("paused") {
		t.Error("pmsuspended ranks like paused")
	}
}
