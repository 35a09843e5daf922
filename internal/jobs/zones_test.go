package jobs

import (
	"fmt"
	"testing"
)

// Zone limits count per zone, and a job only runs on a host of its zone: the
// hosts that mount the zone's backup storages.
func TestPlanZonesAreIndependent(t *testing.T) {
	var queued []Job
	for i := 0; i < 3; i++ {
		queued = append(queued, q(fmt.Sprint("z", i), fmt.Sprint("vmz", i), BackupValidation, t0))
		j := q(fmt.Sprint("y", i), fmt.Sprint("vmy", i), BackupValidation, t0)
		j.ZoneID = "y"
		queued = append(queued, j)
	}
	got := Plan(t0, queued, nil, hosts, limits(true, -1, 1))
	if len(got) != 2 {
		t.Fatalf("one job per zone expected: %s", ids(got))
	}
	for _, a := range got {
		want := map[string]string{"z": "h1", "y": "far"}[a.Job.ZoneID]
		if a.HostID != want {
			t.Fatalf("job %s of zone %s on host %s, want %s", a.Job.ID, a.Job.ZoneID, a.HostID, want)
		}
	}
	// A zone without an enabled host runs nothing, whatever the limits.
	only := []Host{{ID: "far", ZoneID: "y", Enabled: true}}
	for _, a := range Plan(t0, queued, nil, only, limits(true, -1, 0)) {
		if a.Job.ZoneID != "y" {
			t.Fatalf("job %s of zone %s ran on %s", a.Job.ID, a.Job.ZoneID, a.HostID)
		}
	}
}
