package agent

import (
	"slices"
	"strings"
	"testing"

	"github.com/knib/knib/internal/agentapi"
)

// Which validation steps run, and what the result records for each: the
// boot is waited for when asked or when a command needs the guest agent;
// execute_command is skipped without a command or without a booted guest.
func TestValidationStepDecisions(t *testing.T) {
	for _, c := range []struct {
		name           string
		steps          []string
		command        string
		booted         bool
		wantBoot       bool
		wantBootDetail string
		wantSkip       string // part of the reason the command is skipped; "" runs it
	}{
		{name: "boot only", steps: []string{"wait_for_boot"}, wantBoot: true},
		{name: "screenshot only", steps: []string{"screenshot"}},
		{name: "no command", steps: []string{"wait_for_boot", "execute_command"}, booted: true, wantBoot: true, wantSkip: "backupValidationCommand is not set"},
		{name: "command", steps: []string{"wait_for_boot", "execute_command"}, command: "echo", booted: true, wantBoot: true},
		{name: "command, not booted", steps: []string{"wait_for_boot", "execute_command"}, command: "echo", wantBoot: true, wantSkip: "did not answer"},
		{name: "command without wait_for_boot", steps: []string{"execute_command"}, command: "echo", booted: true, wantBoot: true,
			wantBootDetail: "waited for by execute_command"},
		{name: "no command, no wait_for_boot", steps: []string{"execute_command"}, wantSkip: "not set"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := agentapi.ValidateRequest{Steps: c.steps, Command: c.command}
			if got := bootWanted(req); got != c.wantBoot {
				t.Fatalf("bootWanted = %v, want %v", got, c.wantBoot)
			}
			if c.wantBoot {
				if got := bootDetail(req); got != c.wantBootDetail {
					t.Fatalf("bootDetail = %q, want %q", got, c.wantBootDetail)
				}
			}
			if !slices.Contains(c.steps, "execute_command") {
				return // the step is not recorded at all
			}
			got := commandSkipped(req, c.booted)
			if (got == "") != (c.wantSkip == "") || !strings.Contains(got, c.wantSkip) {
				t.Fatalf("commandSkipped = %q, want %q", got, c.wantSkip)
			}
		})
	}
}

// A failed step is also a reason the backup is not valid; a passed one is not.
func TestValidationStepRecords(t *testing.T) {
	res := agentapi.ValidateResult{Reasons: []string{}}
	passStep(&res, "wait_for_boot", "")
	failStep(&res, "screenshot", "no screenshot: gone")
	res.Steps = append(res.Steps, agentapi.StepResult{Step: "execute_command", Outcome: agentapi.StepSkipped, Detail: "no command"})
	want := []agentapi.StepResult{
		{Step: "wait_for_boot", Outcome: agentapi.StepPassed},
		{Step: "screenshot", Outcome: agentapi.StepFailed, Detail: "no screenshot: gone"},
		{Step: "execute_command", Outcome: agentapi.StepSkipped, Detail: "no command"},
	}
	if len(res.Steps) != len(want) {
		t.Fatalf("steps %+v", res.Steps)
	}
	for i := range want {
		if res.Steps[i] != want[i] {
			t.Fatalf("step %d: %+v, want %+v", i, res.Steps[i], want[i])
		}
	}
	if len(res.Reasons) != 1 || res.Reasons[0] != "no screenshot: gone" {
		t.Fatalf("reasons %q", res.Reasons)
	}
}
