package notify_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/notify"
)

// BenchmarkEvaluate measures one evaluation on a catalogue of 200 VMs with
// 20 backups each (4,000 backups), a tenth of them NotValid: the time the
// evaluator holds the catalogue every notify.interval.
func BenchmarkEvaluate(b *testing.B) {
	f := setup(b)
	_, err := f.svc.AddRule(f.ctx, f.admin, notify.RuleSpec{Target: "hook"})
	if err != nil {
		b.Fatal(err)
	}
	h, err := f.st.Host(f.ctx, "localhost")
	if err != nil {
		b.Fatal(err)
	}
	var vms []domain.VM
	for i := range 200 {
		vms = append(vms, domain.VM{ID: domain.NewID(), Name: fmt.Sprintf("vm%03d", i), State: domain.VMRunning})
	}
	if err := f.st.SyncHostVMs(f.ctx, h.ID, vms, f.acc.ID, t0); err != nil {
		b.Fatal(err)
	}
	for i, vm := range vms {
		for n := range 20 {
			bk := domain.Backup{ID: domain.NewID(), VMID: vm.ID, VMName: vm.Name, AccountID: f.acc.ID, Type: domain.BackupFull, Position: n + 1,
				Status: domain.BackupBackedUp, Dir: "backups/" + vm.Name, Plan: "{}", Created: t0.Add(time.Duration(n) * time.Minute), Updated: t0}
			if err := f.st.CreateBackup(f.ctx, bk); err != nil {
				b.Fatal(err)
			}
			if (i*20+n)%10 == 0 {
				if err := f.st.SetValidation(f.ctx, bk.ID, domain.NotValid, "boot", nil, false, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if _, err := f.svc.Evaluate(f.ctx); err != nil { // the first round fires 400 conditions
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.svc.Evaluate(f.ctx); err != nil {
			b.Fatal(err)
		}
	}
}
