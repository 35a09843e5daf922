package jobs

import (
	"sort"
	"time"
)

// Type is a job type (the seed's names).
type Type string

// Job types.
const (
	StartCompression    Type = "StartCompression"
	FinalizeCompression Type = "FinalizeCompression"
	BackupValidation    Type = "BackupValidation"
	// BackupCopy uploads a backup's queued copies to their remotes.
	BackupCopy Type = "BackupCopy"
)

// ParseType checks a job type name.
func ParseType(s string) (Type, bool) {
	switch t := Type(s); t {
	case StartCompression, FinalizeCompression, BackupValidation, BackupCopy:
		return t, true
	}
	return "", false
}

// Family groups job types that share settings.
type Family string

// Families.
const (
	Compression Family = "compression"
	Validation  Family = "validation"
	Copy        Family = "copy"
)

// Family returns the type's family.
func (t Type) Family() Family {
	switch t {
	case BackupValidation:
		return Validation
	case BackupCopy:
		return Copy
	}
	return Compression
}

// Limited reports whether the type counts against and obeys the
// concurrency limits (finalize jobs do not).
func (t Type) Limited() bool { return t != FinalizeCompression }

// State is a job's life cycle: Queued → Running → Succeeded | Failed, with
// Running → Queued again for a retry.
type State string

// Job states.
const (
	Queued    State = "Queued"
	Running   State = "Running"
	Succeeded State = "Succeeded"
	Failed    State = "Failed"
)

// Job is one queued or finished service job.
type Job struct {
	ID         string
	Type       Type
	BackupID   string
	VMID       string
	HostID     string // where it runs (empty while queued)
	ZoneID     string
	Attempts   int
	Scheduled  time.Time // earliest start
	Started    time.Time
	Ended      time.Time
	State      State
	LastError  string
	LeaseOwner string
	LeaseUntil time.Time
	// AccountID is the account of the job's backup (read with the job, not
	// stored with it): the job follows that account's settings.
	AccountID string
	// Avoid, when set, is a host that gets the job only when no other host
	// is as little loaded (not stored: the scheduler sets it per round; a
	// validation avoids the VM's own host, which carries the production VM).
	Avoid string
}

// Limits are a family's settings as one job sees them: Enabled, retries
// and timeout from the job's account and host (each setting at the scopes
// it may be set at); PerHost and PerZone from each host's and zone's own.
type Limits struct {
	Enabled       bool
	PerHost       func(hostID string) int64 // < 1 = unlimited
	PerZone       func(zoneID string) int64 // < 1 = unlimited
	MaxRetries    int
	RetryInterval time.Duration
	Timeout       time.Duration
}

// Host is a host jobs may run on.
type Host struct {
	ID      string
	ZoneID  string
	Enabled bool
}

// Assignment is a job to start now on a host.
type Assignment struct {
	Job    Job
	HostID string
}

// Plan returns the queued jobs to start at now and their hosts. running are
// the jobs running now (any family); limits gives a job's limits.
func Plan(now time.Time, queued, running []Job, hosts []Host, limits func(Job) Limits) []Assignment {
	busyBackup, validatingVM, compressingVM := map[string]bool{}, map[string]bool{}, map[string]bool{}
	perHost := map[Family]map[string]int64{Compression: {}, Validation: {}, Copy: {}}
	perZone := map[Family]map[string]int64{Compression: {}, Validation: {}, Copy: {}}
	for _, j := range running {
		busyBackup[j.BackupID] = true
		if j.Type == BackupValidation {
			validatingVM[j.VMID] = true
		}
		if j.Type.Family() == Compression {
			compressingVM[j.VMID] = true
		}
		if j.Type.Limited() {
			perHost[j.Type.Family()][j.HostID]++
			perZone[j.Type.Family()][j.ZoneID]++
		}
	}
	sorted := append([]Job(nil), queued...)
	sort.SliceStable(sorted, func(a, b int) bool {
		if !sorted[a].Scheduled.Equal(sorted[b].Scheduled) {
			return sorted[a].Scheduled.Before(sorted[b].Scheduled)
		}
		return sorted[a].ID < sorted[b].ID
	})
	var out []Assignment
	for _, j := range sorted {
		if j.State != Queued || j.Scheduled.After(now) || busyBackup[j.BackupID] {
			continue
		}
		// One validation per VM at a time, and none while a compression
		// job of the VM runs (the specification skips those VMs).
		if j.Type == BackupValidation && (validatingVM[j.VMID] || compressingVM[j.VMID]) {
			continue
		}
		fam := j.Type.Family()
		l := limits(j)
		if !l.Enabled {
			continue
		}
		if j.Type.Limited() && l.PerZone != nil {
			if max := l.PerZone(j.ZoneID); max >= 1 && perZone[fam][j.ZoneID] >= max {
				continue
			}
		}
		host, ok := pickHost(j, hosts, l, perHost[fam])
		if !ok {
			continue
		}
		busyBackup[j.BackupID] = true
		if j.Type == BackupValidation {
			validatingVM[j.VMID] = true
		}
		if fam == Compression {
			compressingVM[j.VMID] = true
		}
		if j.Type.Limited() {
			perHost[fam][host]++
			perZone[fam][j.ZoneID]++
		}
		out = append(out, Assignment{Job: j, HostID: host})
	}
	return out
}

// pickHost returns the least-loaded enabled host of the job's zone with room
// under its per-host limit (finalize jobs ignore the limit); between equally
// loaded hosts, one other than j.Avoid. A job bound to a host (HostID set)
// only runs there.
func pickHost(j Job, hosts []Host, l Limits, load map[string]int64) (string, bool) {
	best, bestLoad := "", int64(-1)
	for _, h := range hosts {
		if !h.Enabled || h.ZoneID != j.ZoneID || (j.HostID != "" && h.ID != j.HostID) {
			continue
		}
		if j.Type.Limited() && l.PerHost != nil {
			if max := l.PerHost(h.ID); max >= 1 && load[h.ID] >= max {
				continue
			}
		}
		if bestLoad < 0 || load[h.ID] < bestLoad || (load[h.ID] == bestLoad && better(j.Avoid, h.ID, best)) {
			best, bestLoad = h.ID, load[h.ID]
		}
	}
	return best, best != ""
}

// better breaks a tie between equally loaded hosts: not the avoided one,
// then the smaller id.
func better(avoid, cand, best string) bool {
	if (cand == avoid) != (best == avoid) {
		return best == avoid
	}
	return cand < best
}

// Outcome is what a finished attempt makes of a job.
type Outcome struct {
	State     State
	Scheduled time.Time // next attempt, when State is Queued again
	Attempts  int
}

// AfterFailure decides what a failed (or timed-out, or lost) attempt leads
// to: another try after the retry interval while retries remain, else Failed.
// attempts counts the attempts made so far, this one included.
func AfterFailure(now time.Time, attempts int, l Limits) Outcome {
	if attempts <= l.MaxRetries {
		return Outcome{State: Queued, Scheduled: now.Add(l.RetryInterval), Attempts: attempts}
	}
	return Outcome{State: Failed, Attempts: attempts}
}

// TimedOut reports whether a running job has run past its family's timeout.
func TimedOut(now time.Time, j Job, l Limits) bool {
	return j.State == Running && l.Timeout > 0 && now.Sub(j.Started) > l.Timeout
}

// Lost reports whether a running job's lease ran out: its runner died.
func Lost(now time.Time, j Job) bool {
	return j.State == Running && !j.LeaseUntil.IsZero() && now.After(j.LeaseUntil)
}

// LostFactor is the specification's lost-job rule: a job still running
// LostFactor times its family's timeout after it started is treated as
// failed, even while its runner renews the lease (a runner stuck past its
// own timeout).
const LostFactor = 2.5

// Overdue reports whether a running job started more than LostFactor times
// its family's timeout ago.
func Overdue(now time.Time, j Job, l Limits) bool {
	return j.State == Running && l.Timeout > 0 && !j.Started.IsZero() &&
		now.Sub(j.Started) > time.Duration(float64(l.Timeout)*LostFactor)
}
