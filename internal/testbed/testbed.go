package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

const (
	// SocketPath is libvirtd's read-write socket for qemu:///system.
	SocketPath = "/run/libvirt/libvirt-sock"
	// EnvRequireInfra, set to "1", turns infra skips into failures.
	EnvRequireInfra = "KNIB_TEST_REQUIRE_INFRA"
	// EnvGuestDir overrides the test guest's cache directory (also read by
	// scripts/build-guest.sh).
	EnvGuestDir = "KNIB_GUEST_DIR"
	// DefaultGuestDir is where scripts/build-guest.sh caches the test guest.
	DefaultGuestDir = "/var/cache/knib/guest"
	// ImagesDir holds one directory per test domain, named like the domain.
	ImagesDir = "/var/lib/libvirt/images/knib-test"
	// BootMarker is printed on the test guest's serial console once its
	// guest agent has been started.
	BootMarker = "KNIB-GUEST-READY"
	// AgentChannel is the name of the guest agent's virtio-serial port.
	AgentChannel = "org.qemu.guest_agent.0"
	// KernelCmdline is the test guest's kernel command line.
	KernelCmdline = "console=ttyS0 quiet"
)

// GuestDir is the test guest's cache directory: $KNIB_GUEST_DIR or
// DefaultGuestDir.
func GuestDir() string {
	if d := os.Getenv(EnvGuestDir); d != "" {
		return d
	}
	return DefaultGuestDir
}

// KernelPath is the test guest's kernel.
func KernelPath() string { return filepath.Join(GuestDir(), "vmlinuz") }

// InitrdPath is the test guest's initramfs.
func InitrdPath() string { return filepath.Join(GuestDir(), "initramfs.cpio.gz") }

var (
	guestOnce sync.Once
	guestErr  error
)

// Require makes sure the real-libvirt infrastructure is usable: libvirt's
// socket connectable, qemu-system-x86_64 and the host tools present, running
// as root, and the test guest built (scripts/build-guest.sh, at most once
// per process). When something is missing it skips the test with the
// reason, or fails it when KNIB_TEST_REQUIRE_INFRA=1.
func Require(t testing.TB) {
	t.Helper()
	if reason := infraProblem(); reason != "" {
		unavailable(t, reason)
		return
	}
	guestOnce.Do(func() { guestErr = buildGuest() })
	if guestErr != nil {
		unavailable(t, "test guest unavailable: "+guestErr.Error())
	}
}

func unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvRequireInfra) == "1" {
		t.Fatalf("testbed: infrastructure missing (%s=1): %s", EnvRequireInfra, reason)
	}
	t.Skipf("testbed: infra skip: %s (run scripts/setup.sh as root; set %s=1 to fail instead)", reason, EnvRequireInfra)
}

// infraProblem returns why the infrastructure is unusable, or "".
func infraProblem() string {
	c, err := net.DialTimeout("unix", SocketPath, 2*time.Second)
	if err != nil {
		return fmt.Sprintf("libvirt socket %s not connectable: %v", SocketPath, err)
	}
	c.Close()
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "qemu-io", "mkfs.ext4"} {
		if _, err := lookTool(tool); err != nil {
			return err.Error()
		}
	}
	if os.Geteuid() != 0 {
		return "not running as root (test domains live under " + ImagesDir + ")"
	}
	return ""
}

// lookTool finds a host tool in PATH or in the usual system directories
// (go test may run with a PATH lacking /usr/sbin).
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// ModuleRoot walks up from the working directory to the directory holding
// go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// ensureGuest runs scripts/build-guest.sh (a no-op when the cache is up to
// date) and checks that the kernel and initramfs exist.
// EnsureGuest builds the test guest once per process (cached on disk).
func EnsureGuest() error {
	guestOnce.Do(func() { guestErr = buildGuest() })
	return guestErr
}

func buildGuest() error {
	root, rootErr := ModuleRoot()
	if rootErr == nil {
		script := filepath.Join(root, "scripts", "build-guest.sh")
		if _, err := os.Stat(script); err != nil {
			return fmt.Errorf("build script: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", script)
		cmd.Env = append(os.Environ(), EnvGuestDir+"="+GuestDir())
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %v\n%s", script, err, out.String())
		}
	}
	for _, p := range []string{KernelPath(), InitrdPath()} {
		if _, err := os.Stat(p); err != nil {
			if rootErr != nil {
				return fmt.Errorf("%v, and cannot run the build script: %v", err, rootErr)
			}
			return err
		}
	}
	return nil
}

// Connect returns a go-libvirt connection to qemu:///system over the local
// socket, closed when the test ends. It calls Require first.
func Connect(t testing.TB) *libvirt.Libvirt {
	t.Helper()
	Require(t)
	l, err := Dial()
	if err != nil {
		unavailable(t, err.Error())
		return nil
	}
	t.Cleanup(func() { _ = l.Disconnect() })
	return l
}

// Dial connects to qemu:///system over the local socket.
func Dial() (*libvirt.Libvirt, error) {
	d := dialers.NewLocal(dialers.WithSocket(SocketPath), dialers.WithLocalTimeout(5*time.Second))
	l := libvirt.NewWithDialer(d)
	if err := l.ConnectToURI(libvirt.QEMUSystem); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", libvirt.QEMUSystem, err)
	}
	return l, nil
}
