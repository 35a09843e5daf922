package agentrpc

import (
	"testing"

	"github.com/knib/knib/internal/agentapi"
)

// FuzzDecodeRequest: no message from the network panics the decoding of a
// host command's request, whatever command it names.
func FuzzDecodeRequest(f *testing.F) {
	names := agentapi.Commands()
	f.Add(0, []byte(`{"storage":"/var/lib/knib/storage","dir":"backups/a/b","files":[{"disk":"vda","path":"backups/a/b/vda.qcow2"}]}`))
	f.Add(1, []byte(`{"verify":[{"backup_id":"b","disk":"vda","path":"x","hash":"xxh3-128:00"}],"accept_damaged":true}`))
	f.Add(2, []byte(`null`))
	f.Add(3, []byte(`{"disks":[{}]}`))
	f.Fuzz(func(t *testing.T, which int, raw []byte) {
		if which < 0 {
			which = -which
		}
		name := names[which%len(names)]
		req, err := decodeRequest(name, raw)
		if err == nil && req == nil {
			t.Fatalf("%s: decoded to nil without an error", name)
		}
	})
}
