package jobrun

import (
	"slices"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

// The steps the agent reports are recorded on the backup as they came, in
// their order; a re-validation records its one hash step.
func TestValidationStepsRecorded(t *testing.T) {
	res := agentapi.ValidateResult{Steps: []agentapi.StepResult{
		{Step: "wait_for_boot", Outcome: agentapi.StepPassed},
		{Step: "execute_command", Outcome: agentapi.StepSkipped, Detail: "no command"},
	}}
	want := []domain.ValidationStepRun{
		{Step: domain.StepWaitForBoot, Outcome: domain.StepPassed},
		{Step: domain.StepExecuteCommand, Outcome: domain.StepSkipped, Detail: "no command"},
	}
	if got := stepsOf(res); !slices.Equal(got, want) {
		t.Fatalf("stepsOf = %+v, want %+v", got, want)
	}
	if got := stepsOf(agentapi.ValidateResult{}); got != nil {
		t.Fatalf("an agent that reports no steps: %+v", got)
	}
	if got := hashStep(domain.StepFailed, "damaged: x"); !slices.Equal(got, []domain.ValidationStepRun{{Step: domain.StepHash, Outcome: domain.StepFailed, Detail: "damaged: x"}}) {
		t.Fatalf("hashStep = %+v", got)
	}
}
