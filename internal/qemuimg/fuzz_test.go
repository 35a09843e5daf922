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

func FuzzDecodeMap(f *testing.F) {
	f.Add([]byte(`[{ "start": 0, "length": 524288, "depth": 1, "present": true, "zero": false, "data": true, "offset": 327680},
{ "start": 524288, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true}]`))
	f.Add([]byte(`[{ "start": 0, "length": -1, "depth": 0}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, out []byte) {
		m, err := decodeMap(out)
		if err != nil {
			return
		}
		var next int64
		for _, e := range m {
			if e.Start != next || e.Length <= 0 || (e.Offset != nil && *e.Offset < 0) {
				t.Fatalf("accepted %+v at %d", e, next)
			}
			next = e.Start + e.Length
		}
	})
}
