package dashboard

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// LowFreeFraction is the share of a storage's capacity below which its
// free space needs attention.
const LowFreeFraction = 0.10

// Attention is one thing about a VM or storage that needs a human.
type Attention struct {
	Severity int // 3 data at risk, 2 protection in doubt, 1 worth a look
	What     string
}

// Row is one VM of the dashboard.
type Row struct {
	store.VMSummary
	Attention []Attention
	Severity  int // the highest of Attention's, 0 when all is well
}

// StorageUse is one backup storage's space (admins only).
type StorageUse struct {
	Name           string
	Capacity, Free int64 // last measured; 0 when never measured
	Used           int64 // knib's backups on it
	Measured       time.Time
	Low            bool
}

// Dashboard is the whole answer.
type Dashboard struct {
	Rows      []Row        // worst first, then by name
	Storages  []StorageUse // nil for users
	Generated time.Time
}

// Service holds the dashboard's use case.
type Service struct {
	k     *kernel.Kernel
	store Store
}

// New returns the use case over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store) *Service { return &Service{k: k, store: st} }

// Dashboard returns the rows of the VMs the principal may see (an admin
// sees every VM and the storages) worst first.
func (s *Service) Dashboard(ctx context.Context, p domain.Principal) (Dashboard, error) {
	account := ""
	if !p.IsAdmin() {
		account = p.AccountID
	}
	sums, err := s.store.VMSummaries(ctx, account)
	if err != nil {
		return Dashboard{}, err
	}
	out := Dashboard{Rows: make([]Row, 0, len(sums)), Generated: s.k.Clock().Now()}
	for _, v := range sums {
		att := Needs(v)
		sev := 0
		for _, a := range att {
			sev = max(sev, a.Severity)
		}
		out.Rows = append(out.Rows, Row{VMSummary: v, Attention: att, Severity: sev})
	}
	slices.SortStableFunc(out.Rows, func(a, b Row) int { return cmp.Compare(b.Severity, a.Severity) })
	if p.IsAdmin() {
		list, err := s.store.ListStorages(ctx, "")
		if err != nil {
			return Dashboard{}, err
		}
		for _, st := range list {
			out.Storages = append(out.Storages, StorageUse{Name: st.Name, Capacity: st.Capacity, Free: st.Free, Used: st.Used,
				Measured: st.Measured, Low: Low(st.Capacity, st.Free)})
		}
	}
	return out, nil
}

// Low reports whether free is below LowFreeFraction of a measured capacity.
func Low(capacity, free int64) bool {
	return capacity > 0 && float64(free) < LowFreeFraction*float64(capacity)
}

// Needs lists what about a VM needs a human, worst first.
func Needs(v store.VMSummary) []Attention {
	var out []Attention
	state := v.EffectiveState()
	if state == domain.VMBackupError || state == domain.VMRestoreError {
		what := "VM " + string(state)
		if v.LastError != "" {
			what += ": " + v.LastError
		}
		out = append(out, Attention{3, what})
	}
	if v.LastBackupStatus == domain.BackupError || v.LastBackupStatus == domain.BackupFailed {
		out = append(out, Attention{3, "last backup " + string(v.LastBackupStatus)})
	}
	if v.NotValid > 0 {
		out = append(out, Attention{3, plural(v.NotValid, "backup is", "backups are") + " NotValid"})
	}
	if v.UnableToValidate > 0 {
		out = append(out, Attention{2, plural(v.UnableToValidate, "backup", "backups") + " could not be validated"})
	}
	if v.FailedJobs > 0 {
		out = append(out, Attention{2, plural(v.FailedJobs, "job", "jobs") + " failed"})
	}
	if v.OfferingID != "" && v.LastGoodAt.IsZero() {
		out = append(out, Attention{2, "assigned, never backed up"})
	}
	if state == domain.VMMissing {
		out = append(out, Attention{1, "VM missing on its host"})
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
