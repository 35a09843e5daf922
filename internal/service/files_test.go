package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/config"
	"github.com/knib/knib/internal/service/files"
)

// File-level restore reads only backups whose offering allows file
// extraction, only the caller's own (a user never learns another
// account's backup exists), refuses bad paths and volume names before any
// agent call, and passes the backup's files and the host's helper rules
// to the agent.
func TestFileRestoreRules(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	mk := func(bid string, allow bool, account string) {
		t.Helper()
		off, err := e.svc.Offerings.CreateOffering(ctx, e.admin, domain.OfferingSpec{Name: "f-" + bid[len(bid)-4:], AllowExtractFile: allow})
		if err != nil {
			t.Fatal(err)
		}
		dir := "backups/" + vmID + "/" + bid
		now := time.Now()
		b := domain.Backup{ID: bid, VMID: vmID, VMName: "web", AccountID: account, HostID: e.vm.HostID, OfferingID: off.ID,
			Type: domain.BackupFull, Position: 1, Status: domain.BackupBackedUp, Dir: dir, Created: now, Updated: now, StorageID: defaultStorage(t, e)}
		if err := e.st.CreateBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
		b.Files = []domain.BackupFile{{Disk: "vda", Path: dir + "/vda.qcow2", Full: true, Size: 1, Hash: "xxh3-128:00"}}
		if err := e.st.SaveBackup(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	allowed, closed := "a0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000002"
	mk(allowed, true, e.admin.AccountID)
	mk(closed, false, e.admin.AccountID)
	var got []agentapi.ListFilesRequest
	e.agent.ListFilesFunc = func(req agentapi.ListFilesRequest) (agentapi.ListFilesResult, error) {
		got = append(got, req)
		return agentapi.ListFilesResult{Volumes: []agentapi.FileVolume{{Name: "vda", FSType: "ext4", Browsable: true}}}, nil
	}
	if _, err := e.svc.Config.SetSetting(ctx, e.admin, "backup.file.helper.max.per.host", "3", config.ScopeRef{Host: e.vm.HostID}); err != nil {
		t.Fatal(err)
	}

	res, err := e.svc.Files.List(ctx, e.admin, allowed, "", "")
	if err != nil || len(res.Volumes) != 1 || len(got) != 1 {
		t.Fatalf("list: %+v %v", res, err)
	}
	if r := got[0]; r.BackupID != allowed || r.Storage != "/st" || len(r.Files) != 1 || r.Files[0].Path != "backups/"+vmID+"/"+allowed+"/vda.qcow2" ||
		r.MaxHelpers != 3 || r.IdleTimeout != 300*time.Second {
		t.Fatalf("agent request %+v", r)
	}
	if _, err := e.svc.Files.List(ctx, e.admin, closed, "", ""); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("offering without file extraction: %v", err)
	}
	other := domain.Principal{AccountID: "someone-else", AccountName: "bob", Role: domain.RoleUser}
	if _, err := e.svc.Files.List(ctx, other, allowed, "", ""); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another account's backup: %v", err)
	}
	var inv *domain.InvalidError
	for _, bad := range []struct{ vol, path string }{{"", "relative"}, {"", "/a\x00b"}, {"vda;rm", "/"}, {"../x", "/"}} {
		if _, err := e.svc.Files.List(ctx, e.admin, allowed, bad.vol, bad.path); !errors.As(err, &inv) {
			t.Fatalf("list %q %q: %v", bad.vol, bad.path, err)
		}
	}
	if err := e.svc.Files.Extract(ctx, e.admin, allowed, "", nil, nil); !errors.As(err, &inv) {
		t.Fatalf("extract of nothing: %v", err)
	}
	if _, err := e.svc.Files.Restore(ctx, e.admin, allowed, "", []string{"/etc"}, files.RestoreOptions{VM: "web", To: "relative"}); !errors.As(err, &inv) {
		t.Fatalf("restore to a relative path: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("refused requests reached the agent: %+v", got)
	}
}
