package domain

import (
	"fmt"
	"strings"
)

// Unlimited is the value of a limit that does not apply.
const Unlimited int64 = -1

// Limits are an account's resource limits: how many VMs, vCPUs and bytes
// of memory its VMs may have in all. Unlimited (-1) lifts a limit. The
// validation VMs of the account's backups count against them when the
// account's setting enforce.resource.limit.on.backup.validation.vm is true.
type Limits struct {
	VMs         int64
	VCPUs       int64
	MemoryBytes int64
}

// NoLimits is the default of a new account.
var NoLimits = Limits{VMs: Unlimited, VCPUs: Unlimited, MemoryBytes: Unlimited}

// Usage is what an account's VMs take, or what one more VM would add.
type Usage struct {
	VMs         int64
	VCPUs       int64
	MemoryBytes int64
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{VMs: u.VMs + o.VMs, VCPUs: u.VCPUs + o.VCPUs, MemoryBytes: u.MemoryBytes + o.MemoryBytes}
}

// UsageOf is what one VM takes.
func UsageOf(vm VM) Usage {
	return Usage{VMs: 1, VCPUs: int64(vm.VCPUs), MemoryBytes: int64(vm.MemoryBytes)}
}

// Validate checks that every limit is Unlimited or not negative.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"vms", l.VMs}, {"vcpus", l.VCPUs}, {"memory_bytes", l.MemoryBytes}} {
		if f.v < Unlimited {
			return Invalid(f.name, "must be -1 (unlimited) or at least 0, got %d", f.v)
		}
	}
	return nil
}

// Admit checks that an account using used may take add more. The error
// wraps ErrLimitExceeded and names every limit that would be passed.
func (l Limits) Admit(used, add Usage) error {
	after := used.Add(add)
	var over []string
	check := func(name string, limit, used, after int64) {
		if limit != Unlimited && after > limit {
			over = append(over, fmt.Sprintf("%s %d in use + %d > limit %d", name, used, after-used, limit))
		}
	}
	check("vms", l.VMs, used.VMs, after.VMs)
	check("vcpus", l.VCPUs, used.VCPUs, after.VCPUs)
	check("memory_bytes", l.MemoryBytes, used.MemoryBytes, after.MemoryBytes)
	if len(over) > 0 {
		return fmt.Errorf("%s: %w", strings.Join(over, "; "), ErrLimitExceeded)
	}
	return nil
}
