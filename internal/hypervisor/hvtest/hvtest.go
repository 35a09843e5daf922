package hvtest

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/knib/knib/internal/guestagent"
	"github.com/knib/knib/internal/hypervisor"
)

// Env describes what exists on the hypervisor under test.
type Env struct {
	// Domain, when its UUID is set, must exist and be reported like this:
	// UUID, Name, Persistent and the set of disk targets exactly; State
	// when non-empty; per disk Device, SourceType, Source, Format and
	// BackingChain exactly, Bus and VirtualSize when non-zero. A reported
	// disk must have no Problem. VCPUs and MemoryBytes when non-zero.
	Domain hypervisor.Domain
	// AgentDomain is the UUID of a running domain whose guest agent
	// answers; empty skips the agent checks.
	AgentDomain string
	// EchoPath is the path of an echo program in AgentDomain's guest;
	// empty skips the guest-exec check.
	EchoPath string
	// ScreenshotDomain is the UUID of a running domain with a display;
	// empty skips the screenshot check.
	ScreenshotDomain string
	// StoppedDomain is the UUID of a domain that is not running; empty
	// skips the checks that need one.
	StoppedDomain string
}

// absentUUID names no domain on any sane host.
const absentUUID = "0badc0de-0000-4000-8000-00000000dead"

// Run runs the conformance suite as subtests of t. newHV returns a fresh
// implementation under test; Run closes it at the end of each subtest.
func Run(t *testing.T, newHV func(t *testing.T) hypervisor.Hypervisor, env Env) {
	open := func(t *testing.T) hypervisor.Hypervisor {
		hv := newHV(t)
		t.Cleanup(func() {
			if err := hv.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return hv
	}
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		t.Cleanup(cancel)
		return c
	}

	t.Run("HostInfo", func(t *testing.T) {
		hv := open(t)
		hi, err := hv.HostInfo(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		version := regexp.MustCompile(`^\d+\.\d+\.\d+$`)
		if hi.Hostname == "" || hi.URI == "" || hi.CPUs <= 0 || hi.MemoryBytes == 0 ||
			!version.MatchString(hi.LibvirtVersion) || !version.MatchString(hi.HypervisorVersion) {
			t.Errorf("incomplete host info %+v", hi)
		}
	})

	t.Run("ListDomains", func(t *testing.T) {
		hv := open(t)
		doms, err := hv.ListDomains(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, d := range doms {
			if c, err := hypervisor.CanonicalUUID(d.UUID); err != nil || c != d.UUID {
				t.Errorf("domain %q: uuid %q not canonical", d.Name, d.UUID)
			}
			if seen[d.UUID] {
				t.Errorf("domain %s listed twice", d.UUID)
			}
			seen[d.UUID] = true
			if d.Name == "" || !validState(d.State) {
				t.Errorf("domain %s: name %q state %q", d.UUID, d.Name, d.State)
			}
		}
		if env.Domain.UUID == "" {
			return
		}
		i := slices.IndexFunc(doms, func(d hypervisor.Domain) bool { return d.UUID == env.Domain.UUID })
		if i < 0 {
			t.Fatalf("domain %s (%s) not listed among %d domains", env.Domain.UUID, env.Domain.Name, len(doms))
		}
		compareDomain(t, doms[i], env.Domain)
	})

	t.Run("Domain", func(t *testing.T) {
		if env.Domain.UUID == "" {
			t.Skip("no expected domain in Env")
		}
		hv := open(t)
		d, err := hv.Domain(ctx(t), env.Domain.UUID)
		if err != nil {
			t.Fatal(err)
		}
		compareDomain(t, d, env.Domain)

		// Other spellings of the same uuid.
		for _, u := range []string{strings.ToUpper(env.Domain.UUID), strings.ReplaceAll(env.Domain.UUID, "-", "")} {
			d2, err := hv.Domain(ctx(t), u)
			if err != nil {
				t.Errorf("Domain(%q): %v", u, err)
				continue
			}
			if d2.UUID != env.Domain.UUID {
				t.Errorf("Domain(%q).UUID = %q, want canonical %q", u, d2.UUID, env.Domain.UUID)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		hv := open(t)
		for _, u := range []string{absentUUID, "not-a-uuid", ""} {
			if _, err := hv.Domain(ctx(t), u); !errors.Is(err, hypervisor.ErrDomainNotFound) {
				t.Errorf("Domain(%q): %v, want ErrDomainNotFound", u, err)
			}
			if _, err := hv.DomainXML(ctx(t), u, false); !errors.Is(err, hypervisor.ErrDomainNotFound) {
				t.Errorf("DomainXML(%q): %v, want ErrDomainNotFound", u, err)
			}
			if _, err := hv.AgentCommand(ctx(t), u, []byte(`{"execute":"guest-ping"}`)); !errors.Is(err, hypervisor.ErrDomainNotFound) {
				t.Errorf("AgentCommand(%q): %v, want ErrDomainNotFound", u, err)
			}
			var buf bytes.Buffer
			if _, err := hv.Screenshot(ctx(t), u, &buf); !errors.Is(err, hypervisor.ErrDomainNotFound) {
				t.Errorf("Screenshot(%q): %v, want ErrDomainNotFound", u, err)
			}
		}
	})

	t.Run("DomainXML", func(t *testing.T) {
		if env.Domain.UUID == "" {
			t.Skip("no expected domain in Env")
		}
		hv := open(t)
		for _, inactive := range []bool{false, true} {
			x, err := hv.DomainXML(ctx(t), env.Domain.UUID, inactive)
			if err != nil {
				t.Fatalf("DomainXML(inactive=%v): %v", inactive, err)
			}
			var doc struct {
				XMLName xml.Name `xml:"domain"`
				Name    string   `xml:"name"`
				UUID    string   `xml:"uuid"`
			}
			if err := xml.Unmarshal([]byte(x), &doc); err != nil {
				t.Fatalf("DomainXML(inactive=%v) is not a domain document: %v", inactive, err)
			}
			if doc.Name != env.Domain.Name || !strings.EqualFold(doc.UUID, env.Domain.UUID) {
				t.Errorf("DomainXML(inactive=%v): name %q uuid %q", inactive, doc.Name, doc.UUID)
			}
		}
	})

	t.Run("Agent", func(t *testing.T) {
		if env.AgentDomain == "" {
			t.Skip("no agent domain in Env")
		}
		hv := open(t)
		c := guestagent.New(hv)
		if err := c.Ping(ctx(t), env.AgentDomain); err != nil {
			t.Fatalf("ping: %v", err)
		}
		if err := c.Sync(ctx(t), env.AgentDomain); err != nil {
			t.Fatalf("sync: %v", err)
		}
		err := c.Call(ctx(t), env.AgentDomain, "knib-no-such-command", nil, nil)
		var ae *guestagent.AgentError
		if !errors.As(err, &ae) {
			t.Errorf("unknown command: %v, want *guestagent.AgentError", err)
		}
		if env.EchoPath == "" {
			return
		}
		args := []string{`a"b`, `x","y":"z`, `back\slash`, `{"execute":"guest-shutdown"}`, "line1\nline2", "ünï ✓"}
		res, err := c.Exec(ctx(t), env.AgentDomain, guestagent.ExecRequest{Path: env.EchoPath, Args: args})
		if err != nil {
			t.Fatalf("exec: %v", err)
		}
		if want := strings.Join(args, " ") + "\n"; string(res.Stdout) != want || res.ExitCode != 0 || res.Signal != 0 {
			t.Errorf("exec echo: stdout %q exit %d signal %d, want %q", res.Stdout, res.ExitCode, res.Signal, want)
		}
	})

	t.Run("AgentStopped", func(t *testing.T) {
		if env.StoppedDomain == "" {
			t.Skip("no stopped domain in Env")
		}
		hv := open(t)
		err := guestagent.New(hv).Ping(ctx(t), env.StoppedDomain)
		if !errors.Is(err, guestagent.ErrAgentUnavailable) {
			t.Errorf("ping of a stopped domain: %v, want ErrAgentUnavailable", err)
		}
		var buf bytes.Buffer
		if _, err := hv.Screenshot(ctx(t), env.StoppedDomain, &buf); !errors.Is(err, hypervisor.ErrUnsupported) {
			t.Errorf("screenshot of a stopped domain: %v, want ErrUnsupported", err)
		}
	})

	t.Run("Screenshot", func(t *testing.T) {
		if env.ScreenshotDomain == "" {
			t.Skip("this hypervisor has no screenshot domain in Env (covered by the real-guest suite)")
		}
		hv := open(t)
		var buf bytes.Buffer
		mime, err := hv.Screenshot(ctx(t), env.ScreenshotDomain, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if mime == "" || buf.Len() == 0 {
			t.Fatalf("mime %q, %d bytes", mime, buf.Len())
		}
		if mime == "image/png" && !bytes.HasPrefix(buf.Bytes(), []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("image/png without PNG signature: % x", buf.Bytes()[:min(8, buf.Len())])
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		hv := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 8 {
			wg.Go(func() {
				if _, err := hv.ListDomains(ctx(t)); err != nil {
					errs <- err
				}
				if _, err := hv.HostInfo(ctx(t)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		hv := open(t)
		c, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := hv.HostInfo(c); !errors.Is(err, context.Canceled) {
			t.Errorf("HostInfo with canceled ctx: %v, want context.Canceled", err)
		}
		if _, err := hv.ListDomains(c); !errors.Is(err, context.Canceled) {
			t.Errorf("ListDomains with canceled ctx: %v, want context.Canceled", err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		hv := newHV(t)
		if err := hv.Close(); err != nil {
			t.Fatalf("first Close: %v", err)
		}
		if err := hv.Close(); err != nil {
			t.Errorf("second Close: %v, want nil", err)
		}
		if _, err := hv.HostInfo(ctx(t)); !errors.Is(err, hypervisor.ErrClosed) {
			t.Errorf("HostInfo after Close: %v, want ErrClosed", err)
		}
		if _, err := hv.Domain(ctx(t), absentUUID); !errors.Is(err, hypervisor.ErrClosed) {
			t.Errorf("Domain after Close: %v, want ErrClosed", err)
		}
		if _, err := hv.AgentCommand(ctx(t), absentUUID, []byte(`{"execute":"guest-ping"}`)); !errors.Is(err, hypervisor.ErrClosed) {
			t.Errorf("AgentCommand after Close: %v, want ErrClosed", err)
		}
	})
}

func validState(s hypervisor.DomainState) bool {
	switch s {
	case hypervisor.StateRunning, hypervisor.StatePaused, hypervisor.StateShutoff,
		hypervisor.StateCrashed, hypervisor.StatePMSuspended, hypervisor.StateOther:
		return true
	}
	return false
}

// compareDomain checks got against want as Env.Domain describes.
func compareDomain(t *testing.T, got, want hypervisor.Domain) {
	t.Helper()
	if got.UUID != want.UUID || got.Name != want.Name || got.Persistent != want.Persistent {
		t.Errorf("domain: got uuid %q name %q persistent %v, want %q %q %v",
			got.UUID, got.Name, got.Persistent, want.UUID, want.Name, want.Persistent)
	}
	if want.State != "" && got.State != want.State {
		t.Errorf("domain %s: state %q, want %q", want.Name, got.State, want.State)
	}
	if (want.VCPUs != 0 && got.VCPUs != want.VCPUs) || (want.MemoryBytes != 0 && got.MemoryBytes != want.MemoryBytes) {
		t.Errorf("domain %s: %d vCPUs and %d bytes of memory, want %d and %d", want.Name, got.VCPUs, got.MemoryBytes, want.VCPUs, want.MemoryBytes)
	}
	targets := func(d hypervisor.Domain) []string {
		var s []string
		for _, disk := range d.Disks {
			s = append(s, disk.Target)
		}
		slices.Sort(s)
		return s
	}
	if !slices.Equal(targets(got), targets(want)) {
		t.Errorf("domain %s: disks %v, want %v", want.Name, targets(got), targets(want))
	}
	for _, w := range want.Disks {
		i := slices.IndexFunc(got.Disks, func(d hypervisor.Disk) bool { return d.Target == w.Target })
		if i < 0 {
			continue
		}
		g := got.Disks[i]
		if g.Problem != "" {
			t.Errorf("disk %s: problem %q", w.Target, g.Problem)
		}
		if g.Device != w.Device || g.SourceType != w.SourceType || g.Source != w.Source || g.Format != w.Format {
			t.Errorf("disk %s: device %q source %s:%q format %q, want %q %s:%q %q",
				w.Target, g.Device, g.SourceType, g.Source, g.Format, w.Device, w.SourceType, w.Source, w.Format)
		}
		if w.Bus != "" && g.Bus != w.Bus {
			t.Errorf("disk %s: bus %q, want %q", w.Target, g.Bus, w.Bus)
		}
		if w.VirtualSize != 0 && g.VirtualSize != w.VirtualSize {
			t.Errorf("disk %s: virtual size %d, want %d", w.Target, g.VirtualSize, w.VirtualSize)
		}
		if !slices.Equal(g.BackingChain, w.BackingChain) {
			t.Errorf("disk %s: backing chain %+v, want %+v", w.Target, g.BackingChain, w.BackingChain)
		}
	}
}
