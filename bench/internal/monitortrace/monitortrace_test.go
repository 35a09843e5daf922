package monitortrace

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The log of a real `virsh snapshot-create-as --disk-only --reuse-external`
// (libvirt 9.0.0): three blockdev commands, then the transaction, which
// QEMU answered 3 ms after libvirtd wrote it.
func TestParseRealLog(t *testing.T) {
	f, err := os.Open("testdata/libvirtd-snapshot.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmds, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cmds {
		names = append(names, c.Execute)
	}
	if got := strings.Join(names, ","); got != "query-named-block-nodes,blockdev-add,blockdev-add,transaction" {
		t.Fatalf("commands %s", got)
	}
	last := cmds[len(cmds)-1]
	if last.ID != "libvirt-416" || last.Span != 3*time.Millisecond {
		t.Fatalf("transaction %+v", last)
	}
}

// A command without a reply in the log is left out; lines of other kinds
// and broken payloads are skipped.
func TestParseSkipsWhatItCannotMatch(t *testing.T) {
	log := `2026-12-04 19:08:20.095+0000: 1: info : qemuMonitorIOWrite:366 : QEMU_MONITOR_IO_WRITE: mon=0x1 buf={"execute":"stop","id":"libvirt-1"}
not a log line
2026-12-04 19:08:20.096+0000: 1: info : qemuMonitorIOWrite:366 : QEMU_MONITOR_IO_WRITE: mon=0x1 buf={"execute":
2026-12-04 19:08:20.097+0000: 1: info : qemuMonitorIOWrite:366 : QEMU_MONITOR_IO_WRITE: mon=0x1 buf={"execute":"cont","id":"libvirt-2"} len=40 ret=40 errno=0
2026-12-04 19:08:20.109+0000: 1: info : qemuMonitorJSONIOProcessLine:208 : QEMU_MONITOR_RECV_REPLY: mon=0x1 reply={"return": {}, "id": "libvirt-2"}
`
	cmds, err := Parse(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 1 || cmds[0].Execute != "cont" || cmds[0].Span != 12*time.Millisecond {
		t.Fatalf("commands %+v", cmds)
	}
}
