package agent

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzInStorage: a path from a request either resolves inside the storage
// root or is refused; it never leaves the root.
func FuzzInStorage(f *testing.F) {
	for _, s := range []string{"backups/vm/b1/vda.qcow2", "../etc/passwd", "/etc/passwd", "a/../../b", "a/./b", "", ".", "a\x00b", "..", "a/.."} {
		f.Add(s)
	}
	root := "/var/lib/knib/storage"
	f.Fuzz(func(t *testing.T, rel string) {
		p, err := inStorage(root, rel)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p, root+string(filepath.Separator)) || filepath.Clean(p) != p {
			t.Fatalf("%q resolves to %q, outside %s", rel, p, root)
		}
	})
}

// FuzzManifest: a manifest read back from the storage (a file anyone with
// access to the storage could change) never panics its reader, and its
// disks are found by target as openBackup does.
func FuzzManifest(f *testing.F) {
	f.Add(`{"backup_id":"b1","disks":[{"target":"vda","path":"/img/vda.qcow2","format":"qcow2","bus":"virtio"}]}`)
	f.Add(`{"disks":null}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, raw string) {
		var m Manifest
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return
		}
		bases := map[string]ManifestDisk{}
		for _, d := range m.Disks {
			bases[d.Target] = d
		}
		if len(bases) > len(m.Disks) {
			t.Fatal("more targets than disks")
		}
	})
}
