package testbed

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// Second host: an independent libvirt daemon on this machine, started by
// scripts/second-libvirtd.sh in a private mount namespace (its own config,
// domains, sockets, state, logs and virtlogd; the same disks and backup
// storage paths as the first daemon).
const (
	// SecondHostDir holds the second daemon's directories (etc, qemu,
	// cache, log); scripts/second-libvirtd.sh's KNIB_HOSTB_DIR default.
	SecondHostDir = "/var/lib/knib-hostb"
	// SecondHostSocket is the second daemon's read-write socket.
	SecondHostSocket = "/run/knib-hostb/libvirt-sock"
)

// Host is a libvirt daemon the tests can use as a knib host.
type Host struct {
	// URI opens the daemon with knib's libvirt adapter (lv.Open).
	URI string
	// Socket is the daemon's UNIX socket.
	Socket string
	// QEMULogDir is where the daemon's QEMU logs are, as seen here.
	QEMULogDir string
}

// SecondHostURI is the connection URI of the second daemon: qemu:///system
// through its socket, with the directory its QEMU writes screenshots to.
func SecondHostURI() string {
	return "qemu:///system?socket=" + SecondHostSocket + "&screenshot_dir=" + filepath.Join(SecondHostDir, "qemu")
}

var (
	secondOnce sync.Once
	secondErr  error
)

// SecondHost returns the second, independent libvirt daemon, starting it
// (scripts/second-libvirtd.sh, idempotent) when its socket does not
// answer. It calls Require first; like Require it skips the test when the
// daemon cannot be had, or fails it under KNIB_TEST_REQUIRE_INFRA=1.
func SecondHost(t testing.TB) Host {
	t.Helper()
	Require(t)
	secondOnce.Do(func() { secondErr = ensureSecondHost() })
	if secondErr != nil {
		unavailable(t, "second libvirt daemon: "+secondErr.Error())
	}
	return Host{URI: SecondHostURI(), Socket: SecondHostSocket, QEMULogDir: filepath.Join(SecondHostDir, "log", "qemu")}
}

func ensureSecondHost() error {
	if c, err := net.DialTimeout("unix", SecondHostSocket, 2*time.Second); err == nil {
		c.Close()
		return nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "second-libvirtd.sh"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/second-libvirtd.sh: %v\n%s", err, out.String())
	}
	return nil
}

// DialHost connects to h's daemon and opens qemu:///system there.
func DialHost(h Host) (*libvirt.Libvirt, error) {
	d := dialers.NewLocal(dialers.WithSocket(h.Socket), dialers.WithLocalTimeout(5*time.Second))
	l := libvirt.NewWithDialer(d)
	if err := l.ConnectToURI(libvirt.QEMUSystem); err != nil {
		return nil, fmt.Errorf("connect to %s via %s: %w", libvirt.QEMUSystem, h.Socket, err)
	}
	return l, nil
}

// ConnectHost is DialHost closed when the test ends; a failure is fatal.
func ConnectHost(t testing.TB, h Host) *libvirt.Libvirt {
	t.Helper()
	l, err := DialHost(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Disconnect() })
	return l
}

// NewDomainOn is NewDomain on host h's daemon.
func NewDomainOn(t testing.TB, h Host, opts DomainOptions) *Domain {
	t.Helper()
	l := ConnectHost(t, h)
	t.Cleanup(func() {
		if err := RemoveDomain(l, opts.Name); err != nil {
			t.Errorf("testbed: removing %s: %v", opts.Name, err)
		}
	})
	d, err := createDomain(context.Background(), l, opts, h.QEMULogDir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
