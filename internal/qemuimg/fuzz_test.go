package qemuimg

import "testing"

// FuzzDecodeInfo: whatever qemu-img prints, decoding never panics, and a
// decoded answer has at least one image.
func FuzzDecodeInfo(f *testing.F) {
	f.Add([]byte(`{"virtual-size": 1073741824, "filename": "a.qcow2", "format": "qcow2", "actual-size": 200704,
 "full-backing-filename": "/b.qcow2", "backing-filename": "/b.qcow2", "dirty-flag": false}`), false)
	f.Add([]byte(`[{"virtual-size": 1, "filename": "a", "format": "qcow2"}, {"virtual-size": 1, "filename": "b", "format": "raw"}]`), true)
	f.Add([]byte(`[]`), true)
	f.Add([]byte(`{}`), false)
	f.Add([]byte(`not json`), false)
	f.Fuzz(func(t *testing.T, out []byte, chain bool) {
		infos, err := decodeInfo(out, chain)
		if err == nil && len(infos) == 0 {
			t.Fatal("decoded no image without an error")
		}
	})
}
