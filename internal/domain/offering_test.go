package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewOfferingDefaults(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o, err := NewOffering("id1", OfferingSpec{Name: " basic "}, now)
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "basic" || o.Compress || o.Validate || o.AllowQuickRestore || o.AllowExtractFile ||
		o.BackupChainSize != nil || o.CompressionLibrary != CompressionZstd || len(o.ValidationSteps) != 0 || !o.Created.Equal(now) {
		t.Fatalf("defaults: %+v", o)
	}
	v, err := NewOffering("id2", OfferingSpec{Name: "v", Validate: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.ValidationSteps) != 1 || v.ValidationSteps[0] != StepScreenshot {
		t.Fatalf("validate without steps should default to screenshot, got %v", v.ValidationSteps)
	}
	s, err := NewOffering("id3", OfferingSpec{Name: "s", Validate: true,
		ValidationSteps: []string{"execute_command", "WAIT_FOR_BOOT", "execute_command"}, CompressionLibrary: "ZLIB"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.ValidationSteps) != 2 || s.ValidationSteps[0] != StepWaitForBoot || s.ValidationSteps[1] != StepExecuteCommand {
		t.Fatalf("steps are deduplicated and ordered: %v", s.ValidationSteps)
	}
	if s.CompressionLibrary != CompressionZlib {
		t.Fatalf("library: %v", s.CompressionLibrary)
	}
	if s.EffectiveChainSize(8) != 8 {
		t.Fatal("unset chain size must use the setting")
	}
	three := 3
	c, _ := NewOffering("id4", OfferingSpec{Name: "c", BackupChainSize: &three}, now)
	if c.EffectiveChainSize(8) != 3 {
		t.Fatal("offering chain size must override the setting")
	}
}

func TestNewOfferingRefusesBadInput(t *testing.T) {
	neg := -1
	cases := []struct {
		name  string
		spec  OfferingSpec
		field string
		msg   string
	}{
		{"empty name", OfferingSpec{Name: "  "}, "name", "must not be empty"},
		{"control char", OfferingSpec{Name: "a\nb"}, "name", "control"},
		{"long name", OfferingSpec{Name: strings.Repeat("x", 200)}, "name", "at most"},
		{"unknown library", OfferingSpec{Name: "a", CompressionLibrary: "lz4"}, "compression_library", `"lz4"`},
		{"unknown step", OfferingSpec{Name: "a", Validate: true, ValidationSteps: []string{"reboot"}}, "validation_steps", `"reboot"`},
		{"steps without validate", OfferingSpec{Name: "a", ValidationSteps: []string{"screenshot"}}, "validation_steps", "validate"},
		{"negative chain", OfferingSpec{Name: "a", BackupChainSize: &neg}, "backup_chain_size", "-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewOffering("x", c.spec, time.Now())
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("want *InvalidError, got %v", err)
			}
			if ie.Field != c.field || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got field %q message %q, want field %q containing %q", ie.Field, err, c.field, c.msg)
			}
		})
	}
}

func TestVMAssignable(t *testing.T) {
	ok := VM{Name: "ok", Disks: []Disk{
		{Target: "vda", Device: "disk", SourceType: "file", Format: "qcow2"},
		{Target: "vdb", Device: "disk", SourceType: "file", Format: "raw"},
		{Target: "sda", Device: "cdrom", SourceType: "file", Format: "raw"},
	}}
	if err := ok.CheckAssignable(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Disk{
		{Target: "vdb", Device: "disk", SourceType: "block", Format: "raw"},
		{Target: "vdb", Device: "disk", SourceType: "network", Format: "raw"},
		{Target: "vdb", Device: "disk", SourceType: "file", Format: "vmdk"},
	} {
		vm := VM{Name: "bad", Disks: []Disk{ok.Disks[0], bad}}
		err := vm.CheckAssignable()
		if err == nil || !strings.Contains(err.Error(), "vdb") {
			t.Fatalf("disk %+v: want refusal naming vdb, got %v", bad, err)
		}
	}
	if err := (VM{Name: "cd", Disks: []Disk{ok.Disks[2]}}).CheckAssignable(); err == nil {
		t.Fatal("a VM with only a cdrom has nothing to back up")
	}
}

func TestPrincipalRules(t *testing.T) {
	admin := Principal{AccountID: "a", Role: RoleAdmin}
	user := Principal{AccountID: "u", Role: RoleUser}
	mine, theirs := VM{AccountID: "u"}, VM{AccountID: "other"}
	if !admin.CanSeeVM(theirs) || !user.CanSeeVM(mine) || user.CanSeeVM(theirs) {
		t.Fatal("VM visibility rules")
	}
	if (Principal{Role: RoleUser}).CanSeeVM(VM{}) {
		t.Fatal("a principal without account must not see unowned VMs")
	}
	if err := user.RequireAdmin("x"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("user admin check: %v", err)
	}
	if err := admin.RequireAdmin("x"); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRole("root"); err == nil {
		t.Fatal("unknown role accepted")
	}
}

func TestNewIDIsUUID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := NewID()
		if !IsUUID(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	if err := ValidateRef("vm", "../etc"); err == nil {
		t.Fatal("path separators must be refused in references")
	}
}
