package seal

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen: any bytes either open to exactly what was sealed, or fail
// with ErrTampered (or a read error); never a panic, never other bytes.
func FuzzOpen(f *testing.F) {
	var k Key
	salt := make([]byte, saltLen)
	plain := []byte("the manifest of a backup")
	sealed, err := Seal(k, salt, "n", plain)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add(sealed[:headerLen])
	f.Add([]byte("KNIBSEAL"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Open(k, "n", in)
		if err == nil && !bytes.Equal(got, plain) && !bytes.Equal(in, sealed) {
			// Only our sealing of plain (or another plaintext sealed under
			// the same key) opens; the fuzzer cannot forge one.
			t.Fatalf("opened %q from forged bytes", got)
		}
		if err != nil && !errors.Is(err, ErrTampered) {
			t.Fatalf("error not ErrTampered: %v", err)
		}
	})
}
