package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestLimitsAdmit(t *testing.T) {
	vm := Usage{VMs: 1, VCPUs: 2, MemoryBytes: 1 << 30}
	cases := []struct {
		name   string
		limits Limits
		used   Usage
		over   []string // limits named in the error; none: admitted
	}{
		{"unlimited", NoLimits, Usage{VMs: 100, VCPUs: 400, MemoryBytes: 1 << 40}, nil},
		{"fits exactly", Limits{VMs: 2, VCPUs: 4, MemoryBytes: 2 << 30}, vm, nil},
		{"one vm too many", Limits{VMs: 1, VCPUs: Unlimited, MemoryBytes: Unlimited}, vm, []string{"vms 1 in use + 1 > limit 1"}},
		{"vcpus and memory", Limits{VMs: Unlimited, VCPUs: 3, MemoryBytes: 1 << 30}, vm, []string{"vcpus 2 in use + 2 > limit 3", "memory_bytes"}},
		{"zero forbids all", Limits{VMs: 0, VCPUs: Unlimited, MemoryBytes: Unlimited}, Usage{}, []string{"vms 0 in use + 1 > limit 0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.limits.Admit(c.used, vm)
			if len(c.over) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrLimitExceeded) {
				t.Fatalf("want ErrLimitExceeded, got %v", err)
			}
			for _, want := range c.over {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("%q does not name %q", err, want)
				}
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := NoLimits.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Limits{VMs: 0, VCPUs: 4, MemoryBytes: 0}).Validate(); err != nil {
		t.Fatal(err)
	}
	var inv *InvalidError
	if err := (Limits{VMs: -2, VCPUs: Unlimited, MemoryBytes: Unlimited}).Validate(); !errors.As(err, &inv) || inv.Field != "vms" {
		t.Fatalf("got %v", err)
	}
}
