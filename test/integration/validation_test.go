package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

type validation struct {
	ID               string `json:"id"`
	ValidationStatus string `json:"validation_status"`
	ValidationReason string `json:"validation_reason"`
	HasScreenshot    bool   `json:"has_screenshot"`
	Files            []struct {
		Path string `json:"path"`
	} `json:"files"`
	Steps []struct {
		Step    string `json:"step"`
		Outcome string `json:"outcome"`
		Detail  string `json:"detail"`
	} `json:"validation_steps"`
}

// steps is the validation's steps as "step:outcome", in the order they ran.
func (v validation) steps() string {
	var out []string
	for _, st := range v.Steps {
		out = append(out, st.Step+":"+st.Outcome)
	}
	return strings.Join(out, " ")
}

func (s *Server) waitValidation(id string) validation {
	s.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var v validation
		s.MustJSON(&v, "backup", "show", id)
		switch v.ValidationStatus {
		case "Valid", "NotValid", "UnableToValidate":
			return v
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("backup %s not validated after 3 minutes: %+v\n%s", id, v, s.Log())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestValidation is the seed's "Validation tests" table, on the test guest
// and its real guest agent, plus the periodic re-validation that detects a
// corrupted byte. Each verdict records the steps that ran (row 3: without a
// command, execute_command is skipped). A boot that does not answer within
// backupValidationBootTimeout and a command that outlives
// backupValidationCommandTimeout are NotValid and leave no validation VM;
// with backup.validation.end.chain.on.fail=false a NotValid backup stays the
// chain head and the next backup is incremental on it.
func TestValidation(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-valid", Start: true})
	s := StartServer(t, "")
	s.Stop()
	s.JobsEvery = "1s"
	s.Restart()
	s.CLI("settings", "set", "backup.validation.screenshot.default.wait", "2")
	s.CLI("settings", "set", "backup.validation.boot.default.timeout", "90")
	s.CLI("settings", "set", "backup.validation.max.job.retries", "0")
	s.CLI("host", "refresh")

	// ran is what the backup records: each step run (or skipped) with its outcome.
	const boot, cmdSkipped, cmdPassed = "wait_for_boot:passed", "execute_command:skipped", "execute_command:passed"
	cases := []struct {
		name, steps, command, args, expected string
		bootTimeout, commandTimeout          string // VM details, in seconds
		want, reason, ran                    string
		screenshot                           bool
		keepChain                            bool // backup.validation.end.chain.on.fail=false for the VM's account
	}{
		{name: "screenshot", steps: "screenshot", want: "Valid", screenshot: true, ran: "screenshot:passed"},
		{name: "boot", steps: "wait_for_boot", want: "Valid", ran: boot},
		{name: "boot-no-command", steps: "wait_for_boot,execute_command", want: "Valid", ran: boot + " " + cmdSkipped},
		{name: "echo", steps: "wait_for_boot,execute_command", command: "echo", want: "Valid", ran: boot + " " + cmdPassed},
		{name: "echo-ababa", steps: "wait_for_boot,execute_command", command: "echo", args: "ababa", want: "Valid", ran: boot + " " + cmdPassed},
		{name: "echo-wrong", steps: "wait_for_boot,execute_command", command: "echo", args: "ababa", expected: "absdui", want: "NotValid", reason: "YWJhYmEK",
			ran: boot + " execute_command:failed"},
		{name: "echo-right", steps: "wait_for_boot,execute_command", command: "echo", args: "ababa", expected: "YWJhYmEK", want: "Valid", ran: boot + " " + cmdPassed},
		{name: "all", steps: "screenshot,wait_for_boot,execute_command", command: "echo", args: "ababa", expected: "YWJhYmEK", want: "Valid", screenshot: true,
			ran: boot + " screenshot:passed " + cmdPassed},
		// The test guest needs about 5 s to boot under TCG: its agent cannot answer within 1 s, and the command is not run.
		{name: "boot-timeout", steps: "wait_for_boot,execute_command", command: "echo", bootTimeout: "1", want: "NotValid",
			reason: "did not answer guest-sync within 1s", ran: "wait_for_boot:failed " + cmdSkipped},
		{name: "command-timeout", steps: "wait_for_boot,execute_command", command: "sleep", args: "30", commandTimeout: "2", want: "NotValid",
			reason: "command sleep timed out after 2s", ran: boot + " execute_command:failed", keepChain: true},
	}
	var account struct {
		Account string `json:"account"`
	}
	s.MustJSON(&account, "vm", "show", dom.Name)
	var withShot, withoutShot string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for key, val := range map[string]string{"backupValidationCommand": c.command, "backupValidationCommandArguments": c.args,
				"backupValidationCommandExpectedResult": c.expected, "backupValidationBootTimeout": c.bootTimeout,
				"backupValidationCommandTimeout": c.commandTimeout} {
				if val == "" {
					s.Run(nil, "vm", "detail", "delete", dom.Name, key)
				} else {
					s.CLI("vm", "detail", "set", dom.Name, key, val)
				}
			}
			var off struct{ ID string }
			s.MustJSON(&off, "offering", "create", "--name", "val-"+c.name, "--validate", "--validation-steps", c.steps)
			s.Run(nil, "vm", "unassign", dom.Name)
			s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
			if c.keepChain {
				s.CLI("settings", "set", "backup.validation.end.chain.on.fail", "false", "--account", account.Account)
				defer s.CLI("settings", "reset", "backup.validation.end.chain.on.fail", "--account", account.Account)
			}
			b := s.backup(dom.Name)
			v := s.waitValidation(b.ID)
			if v.ValidationStatus != c.want || !strings.Contains(v.ValidationReason, c.reason) || v.HasScreenshot != c.screenshot {
				t.Fatalf("validation: %+v", v)
			}
			if got := v.steps(); got != c.ran {
				t.Fatalf("steps recorded: %q, want %q (%+v)", got, c.ran, v.Steps)
			}
			if c.expected != "" && c.want == "NotValid" && !strings.Contains(v.ValidationReason, "absdui") {
				t.Fatalf("the reason must show what was expected and what came: %q", v.ValidationReason)
			}
			// backup.validation.end.chain.on.fail (default true): a failed validation ends the chain;
			// with false it does not, and the next backup is incremental on the one that is NotValid.
			vm := s.vmDisks(dom.Name)
			switch {
			case c.keepChain:
				if vm.ChainHead != b.ID || len(vm.deltas()) == 0 {
					t.Fatalf("with end.chain.on.fail=false the NotValid backup %s stays the chain head: %+v", b.ID, vm)
				}
				// The next backup fails its validation at once (its boot may take 1 s), and keeps the chain too.
				s.CLI("vm", "detail", "set", dom.Name, "backupValidationBootTimeout", "1")
				next := s.backup(dom.Name)
				if next.Type != "incremental" || next.ParentID != b.ID {
					t.Fatalf("the backup after a NotValid one on a kept chain: %+v", next)
				}
				if v := s.waitValidation(next.ID); v.ValidationStatus != "NotValid" || s.vmDisks(dom.Name).ChainHead != next.ID {
					t.Fatalf("the next backup's validation: %+v", v)
				}
			case (c.want == "NotValid") != (vm.ChainHead == ""):
				t.Fatalf("chain head after a %s validation: %q", c.want, vm.ChainHead)
			}
			if c.screenshot {
				withShot = b.ID
			} else if withoutShot == "" {
				withoutShot = b.ID
			}
			// The validation VM is gone, and so are its overlays.
			s.waitValidationTornDown(b.ID)
		})
	}

	// Download a screenshot; a backup without one gets a clear error.
	png := filepath.Join(t.TempDir(), "shot.png")
	s.CLI("backup", "screenshot", withShot, "-o", png)
	raw, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(raw, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v, %d bytes", err, len(raw))
	}
	if msg := s.Fail(nil, 1, "backup", "screenshot", withoutShot, "-o", png); !strings.Contains(msg, "no validation screenshot") {
		t.Fatalf("backup without screenshot: %s", msg)
	}

	// A valid backup is re-hashed by the next validation; one corrupted byte is detected.
	v := s.waitValidation(withShot)
	file := s.storage(v.Files[0].Path)
	s.CLI("backup", "validate", withShot)
	if got := s.waitValidationAfter(withShot); got.ValidationStatus != "Valid" || got.steps() != "hash:passed" {
		t.Fatalf("re-validation of an intact backup: %+v", got)
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	one := make([]byte, 1)
	f.ReadAt(one, st.Size()/2)
	one[0] ^= 0xff
	f.WriteAt(one, st.Size()/2)
	f.Close()
	s.CLI("backup", "validate", withShot)
	if got := s.waitValidationAfter(withShot); got.ValidationStatus != "NotValid" || !strings.HasPrefix(got.ValidationReason, "damaged: ") ||
		got.steps() != "hash:failed" {
		t.Fatalf("re-validation of a corrupted backup: %+v", got)
	}
}

// waitValidationAfter waits for a queued validation of an already validated
// backup to finish.
func (s *Server) waitValidationAfter(id string) validation {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var jobs []job
		s.MustJSON(&jobs, "job", "list", "--backup", id)
		due := 0
		for _, j := range jobs {
			if !j.Scheduled.After(time.Now()) {
				due++
			}
		}
		if due == 0 {
			return s.waitValidation(id)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("validation of %s still queued: %+v", id, jobs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestValidationVMNeverOutlivesItsServer: the server dies while the
// validation VM runs; at restart the VM and its overlays are removed by name
// and the job, whose runner is gone, is retried to a verdict.
func TestValidationVMNeverOutlivesItsServer(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-valcrash", Start: true})
	s := StartServer(t, "")
	s.Stop()
	s.JobsEvery, s.JobLease = "1s", "6s"
	s.Restart("KNIB_CRASH_AT=validation.after-boot")
	s.CLI("host", "refresh")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "valcrash", "--validate", "--validation-steps", "wait_for_boot")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	b := s.backup(dom.Name)
	if err := s.Wait(2 * time.Minute); err != nil {
		t.Fatalf("the crash point was not reached: %v", err)
	}
	// The crashed validation VMs by uuid: the retry's VM has the same name.
	var crashed []string
	for _, name := range strings.Fields(run(t, "virsh", "-c", "qemu:///system", "list", "--name")) {
		if strings.HasPrefix(name, "knib-validate-"+b.ID[:8]) { // this backup's, not another test's
			crashed = append(crashed, strings.TrimSpace(run(t, "virsh", "-c", "qemu:///system", "domuuid", name)))
		}
	}
	if len(crashed) == 0 {
		t.Fatal("the validation VM should be running at the crash")
	}
	overlays, _ := os.ReadDir(s.storage("validation"))
	s.Restart()
	// The lost job is retried at once and may have started a new
	// validation VM already: the crashed one, and its overlays, must be gone.
	out := run(t, "virsh", "-c", "qemu:///system", "list", "--all", "--uuid")
	for _, uuid := range crashed {
		if strings.Contains(out, uuid) {
			t.Fatalf("validation VM %s left after restart: %s", uuid, out)
		}
	}
	// The lost job's lease runs out (6 s here); then it is retried at once.
	if v := s.waitValidation(b.ID); v.ValidationStatus != "Valid" {
		t.Fatalf("after the retry: %+v", v)
	}
	// Once the retry has its verdict no overlay is left: neither the
	// crashed validation's nor the retry's (which may have made its own
	// before its VM existed, so this is checked only now).
	if len(overlays) == 0 {
		t.Fatal("the crashed validation had no overlays")
	}
	s.waitValidationTornDown(b.ID)
}

// TestValidationAccountLimits: with enforce.resource.limit.on.backup.validation.vm
// set for the VM's account, a validation VM that would pass the account's
// limits is never created (the job fails and says which limit); without
// the setting, or with room, the same backup validates.
func TestValidationAccountLimits(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-vallim", Start: true})
	s := StartServer(t, "")
	s.Stop()
	s.JobsEvery = "1s"
	s.Restart()
	s.CLI("settings", "set", "backup.validation.max.job.retries", "0")
	s.CLI("settings", "set", "backup.validation.boot.default.timeout", "90")
	s.CLI("account", "create", "tenant")
	s.CLI("vm", "set-owner", dom.Name, "--account", "tenant")
	s.CLI("settings", "set", "enforce.resource.limit.on.backup.validation.vm", "true", "--account", "tenant")

	// The tenant's one VM (1 vCPU, 256 MiB) is all it may have.
	var acc struct {
		Limits struct{ VMs, VCPUs int64 } `json:"limits"`
		Usage  *struct {
			VMs         int64 `json:"vms"`
			VCPUs       int64 `json:"vcpus"`
			MemoryBytes int64 `json:"memory_bytes"`
		} `json:"usage"`
	}
	s.MustJSON(&acc, "account", "limits", "tenant", "--vms", "1")
	s.MustJSON(&acc, "account", "show", "tenant")
	if acc.Limits.VMs != 1 || acc.Limits.VCPUs != -1 || acc.Usage == nil || acc.Usage.VMs != 1 || acc.Usage.VCPUs != 1 ||
		acc.Usage.MemoryBytes != testbed.DefaultMemoryMiB<<20 {
		t.Fatalf("account: %+v usage %+v", acc, acc.Usage)
	}
	// Bad limits change nothing.
	if msg := s.Fail(nil, 1, "account", "limits", "tenant", "--vms", "-5"); !strings.Contains(msg, "vms") {
		t.Fatalf("negative limit: %s", msg)
	}

	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "val-limits", "--validate", "--validation-steps", "wait_for_boot")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	b := s.backup(dom.Name)
	var failed job
	deadline := time.Now().Add(2 * time.Minute)
	for failed.State != "Failed" {
		if time.Now().After(deadline) {
			t.Fatalf("the validation job did not fail on the account's limit: %+v\n%s", failed, s.Log())
		}
		time.Sleep(500 * time.Millisecond)
		var list []job
		s.MustJSON(&list, "job", "list", "--backup", b.ID, "--all")
		for _, j := range list {
			if j.Type == "BackupValidation" {
				failed = j
			}
		}
	}
	if !strings.Contains(failed.LastError, "vms 1 in use + 1 > limit 1") || !strings.Contains(failed.LastError, "tenant") {
		t.Fatalf("the failed job must name the limit: %+v", failed)
	}
	// No verdict on the backup itself: it could not be validated, and the
	// reason names the limit.
	if v := s.waitValidation(b.ID); v.ValidationStatus != "UnableToValidate" || !strings.Contains(v.ValidationReason, "limit 1") {
		t.Fatalf("a validation refused by the limits: %+v", v)
	}
	if out := run(t, "virsh", "-c", "qemu:///system", "list", "--all", "--name"); strings.Contains(out, "knib-validate-"+b.ID[:8]) {
		t.Fatalf("validation VM left: %s", out)
	}

	// Room for one more VM: the same backup validates.
	s.CLI("account", "limits", "tenant", "--vms", "2")
	s.CLI("backup", "validate", b.ID)
	if got := s.waitValidationAfter(b.ID); got.ValidationStatus != "Valid" {
		t.Fatalf("validation with room in the limits: %+v\n%s", got, s.Log())
	}
}
