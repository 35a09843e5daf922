package config

import (
	"context"
	"fmt"
	"sort"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// ScopeRef names where a setting is read or written: at most one of Zone,
// Host or Account (names or ids); none means global.
type ScopeRef struct {
	Zone, Host, Account string
}

// EffectiveSetting is a setting's definition and its value at a scope.
type EffectiveSetting struct {
	Def   settings.Definition
	Value settings.Value
}

// resolveScope turns names into a settings.Scope, the scope id and, for
// reading, the whole target (a host implies its zone).
func (s *Service) resolveScope(ctx context.Context, ref ScopeRef) (settings.Scope, string, settings.Target, error) {
	n := 0
	for _, v := range []string{ref.Zone, ref.Host, ref.Account} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return "", "", settings.Target{}, domain.Invalid("scope", "give at most one of zone, host and account")
	}
	switch {
	case ref.Host != "":
		if err := domain.ValidateRef("host", ref.Host); err != nil {
			return "", "", settings.Target{}, err
		}
		h, err := s.store.Host(ctx, ref.Host)
		if err != nil {
			return "", "", settings.Target{}, err
		}
		return settings.ScopeHost, h.ID, settings.Target{Host: h.ID, Zone: h.ZoneID}, nil
	case ref.Zone != "":
		if err := domain.ValidateRef("zone", ref.Zone); err != nil {
			return "", "", settings.Target{}, err
		}
		z, err := s.store.Zone(ctx, ref.Zone)
		if err != nil {
			return "", "", settings.Target{}, err
		}
		return settings.ScopeZone, z.ID, settings.Target{Zone: z.ID}, nil
	case ref.Account != "":
		if err := domain.ValidateRef("account", ref.Account); err != nil {
			return "", "", settings.Target{}, err
		}
		a, err := s.store.Account(ctx, ref.Account)
		if err != nil {
			return "", "", settings.Target{}, err
		}
		return settings.ScopeAccount, a.ID, settings.Target{Account: a.ID}, nil
	}
	return settings.ScopeGlobal, "", settings.Target{}, nil
}

// ListSettings returns every setting with its effective value at a scope (admin).
func (s *Service) ListSettings(ctx context.Context, p domain.Principal, ref ScopeRef) ([]EffectiveSetting, error) {
	if err := p.RequireAdmin("reading settings"); err != nil {
		return nil, err
	}
	_, _, target, err := s.resolveScope(ctx, ref)
	if err != nil {
		return nil, err
	}
	stored, err := s.store.ListSettings(ctx)
	if err != nil {
		return nil, err
	}
	agent := s.k.AgentSettings(ctx, target)
	var out []EffectiveSetting
	for _, def := range settings.Definitions() {
		v, err := settings.Resolve(def.Key, target, kernel.StoredSettings(stored), agent)
		if err != nil {
			return nil, err
		}
		out = append(out, EffectiveSetting{Def: def, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Def.Key < out[j].Def.Key })
	return out, nil
}

// SetSetting validates and stores a value at a scope (admin).
func (s *Service) SetSetting(ctx context.Context, p domain.Principal, key, value string, ref ScopeRef) (EffectiveSetting, error) {
	if err := p.RequireAdmin("changing settings"); err != nil {
		return EffectiveSetting{}, err
	}
	def, ok := settings.Lookup(key)
	if !ok {
		return EffectiveSetting{}, domain.Invalid("key", "unknown setting %q", key)
	}
	scope, scopeID, target, err := s.resolveScope(ctx, ref)
	if err != nil {
		return EffectiveSetting{}, err
	}
	if err := settings.CheckScope(key, scope); err != nil {
		return EffectiveSetting{}, domain.Invalid("scope", "%v", err)
	}
	norm, err := def.Validate(value)
	if err != nil {
		return EffectiveSetting{}, domain.Invalid("value", "%v", err)
	}
	if err := s.store.SetSetting(ctx, store.Setting{Scope: string(scope), ScopeID: scopeID, Key: key, Value: norm}); err != nil {
		return EffectiveSetting{}, err
	}
	s.k.Log().Info("setting changed", "key", key, "scope", scope, "scope_id", scopeID, "value", norm)
	return s.effective(ctx, def, target)
}

// ResetSetting removes the value stored at a scope (admin).
func (s *Service) ResetSetting(ctx context.Context, p domain.Principal, key string, ref ScopeRef) (EffectiveSetting, error) {
	if err := p.RequireAdmin("changing settings"); err != nil {
		return EffectiveSetting{}, err
	}
	def, ok := settings.Lookup(key)
	if !ok {
		return EffectiveSetting{}, domain.Invalid("key", "unknown setting %q", key)
	}
	scope, scopeID, target, err := s.resolveScope(ctx, ref)
	if err != nil {
		return EffectiveSetting{}, err
	}
	if err := s.store.DeleteSetting(ctx, string(scope), scopeID, key); err != nil {
		return EffectiveSetting{}, err
	}
	return s.effective(ctx, def, target)
}

func (s *Service) effective(ctx context.Context, def settings.Definition, t settings.Target) (EffectiveSetting, error) {
	stored, err := s.store.ListSettings(ctx)
	if err != nil {
		return EffectiveSetting{}, err
	}
	v, err := settings.Resolve(def.Key, t, kernel.StoredSettings(stored), s.k.AgentSettings(ctx, t))
	return EffectiveSetting{Def: def, Value: v}, err
}

// VMDetail is one VM detail with its definition.
type VMDetail struct {
	Def   settings.VMDetail
	Value string
	// ReadOnly is true when users may not change it: it is listed in the
	// effective user.vm.readonly.details of the VM.
	ReadOnly bool
}

// VMDetails lists the details set on a VM.
func (s *Service) VMDetails(ctx context.Context, p domain.Principal, ref string) ([]VMDetail, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return nil, err
	}
	vals, err := s.store.VMDetails(ctx, vm.ID)
	if err != nil {
		return nil, err
	}
	view, err := s.k.VMSettings(ctx, vm)
	if err != nil {
		return nil, err
	}
	var out []VMDetail
	for _, def := range settings.VMDetails() {
		if v, ok := vals[def.Key]; ok {
			out = append(out, VMDetail{Def: def, Value: v, ReadOnly: view.VMDetailReadOnly(def.Key)})
		}
	}
	return out, nil
}

func (s *Service) vmDetailFor(ctx context.Context, p domain.Principal, ref, key string) (domain.VM, settings.VMDetail, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return vm, settings.VMDetail{}, err
	}
	def, ok := settings.LookupVMDetail(key)
	if !ok {
		return vm, def, domain.Invalid("key", "unknown VM detail %q", key)
	}
	if p.IsAdmin() {
		return vm, def, nil
	}
	view, err := s.k.VMSettings(ctx, vm)
	if err != nil {
		return vm, def, err
	}
	if view.VMDetailReadOnly(key) {
		return vm, def, fmt.Errorf("VM detail %s is read-only for users (setting %s): %w", key, settings.KeyUserVMReadOnlyDetails, domain.ErrForbidden)
	}
	return vm, def, nil
}

// SetVMDetail validates and stores a VM detail. Users may set the details of
// their own VMs except the read-only ones.
func (s *Service) SetVMDetail(ctx context.Context, p domain.Principal, ref, key, value string) ([]VMDetail, error) {
	vm, _, err := s.vmDetailFor(ctx, p, ref, key)
	if err != nil {
		return nil, err
	}
	norm, err := settings.ValidateVMDetail(key, value)
	if err != nil {
		return nil, domain.Invalid("value", "%v", err)
	}
	if err := s.store.SetVMDetail(ctx, vm.ID, key, norm); err != nil {
		return nil, err
	}
	return s.VMDetails(ctx, p, vm.ID)
}

// DeleteVMDetail removes a VM detail.
func (s *Service) DeleteVMDetail(ctx context.Context, p domain.Principal, ref, key string) ([]VMDetail, error) {
	vm, _, err := s.vmDetailFor(ctx, p, ref, key)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteVMDetail(ctx, vm.ID, key); err != nil {
		return nil, err
	}
	return s.VMDetails(ctx, p, vm.ID)
}
