package fake_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/knib/knib/internal/guestagent"
	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/hypervisor/fake"
	"github.com/knib/knib/internal/hypervisor/hvtest"
)

const (
	runningUUID = "5f1c1e0a-8d1b-4a57-9a53-3f4f0e1d2c3b"
	stoppedUUID = "7A2B3C4D-0000-4000-8000-000000000001" // upper case on purpose
)

func testDomain() hypervisor.Domain {
	return hypervisor.Domain{
		UUID: runningUUID, Name: "vm1", State: hypervisor.StateRunning, Persistent: true,
		Disks: []hypervisor.Disk{
			{Target: "vda", Device: "disk", Bus: "virtio", SourceType: "file", Source: "/img/vda-d2.qcow2",
				Format: "qcow2", VirtualSize: 64 << 20,
				BackingChain: []hypervisor.Layer{{Path: "/img/vda-d1.qcow2", Format: "qcow2"}, {Path: "/img/vda.qcow2", Format: "qcow2"}}},
			{Target: "vdb", Device: "disk", Bus: "virtio", SourceType: "file", Source: "/img/vdb.qcow2",
				Format: "qcow2", VirtualSize: 32 << 20},
		},
	}
}

func newFake() *fake.Hypervisor {
	h := fake.New()
	h.PutDomain(testDomain())
	h.PutDomain(hypervisor.Domain{UUID: stoppedUUID, Name: "vm2", Persistent: true})
	_ = h.SetScreenshot(runningUUID, "image/png", []byte("\x89PNG\r\n\x1a\nrest"))
	h.SetExec(func(_ string, req guestagent.ExecRequest) (guestagent.ExecResult, error) {
		if req.Path != "/bin/echo" {
			return guestagent.ExecResult{}, errors.New("Failed to execute child process")
		}
		return guestagent.ExecResult{Stdout: []byte(strings.Join(req.Args, " ") + "\n")}, nil
	})
	return h
}

func TestConformance(t *testing.T) {
	hvtest.Run(t, func(*testing.T) hypervisor.Hypervisor { return newFake() }, hvtest.Env{
		Domain:           testDomain(),
		AgentDomain:      runningUUID,
		EchoPath:         "/bin/echo",
		ScreenshotDomain: runningUUID,
		StoppedDomain:    strings.ToLower(stoppedUUID),
	})
}

func TestScriptedAgent(t *testing.T) {
	h := newFake()
	boom := errors.New("boom")
	if err := h.ScriptAgent(runningUUID,
		fake.AgentReply{Reply: []byte(`{"error":{"class":"GenericError","desc":"frozen"}}`)},
		fake.AgentReply{Err: boom}); err != nil {
		t.Fatal(err)
	}
	c := guestagent.New(h)
	ctx := context.Background()
	var ae *guestagent.AgentError
	if err := c.Ping(ctx, runningUUID); !errors.As(err, &ae) || ae.Desc != "frozen" {
		t.Fatalf("first: %v", err)
	}
	if err := c.Ping(ctx, runningUUID); !errors.Is(err, boom) {
		t.Fatalf("second: %v", err)
	}
	if err := c.Ping(ctx, runningUUID); err != nil { // built-in agent again
		t.Fatalf("third: %v", err)
	}
	if got := h.AgentCommands(runningUUID); len(got) != 3 || got[0] != `{"execute":"guest-ping"}` {
		t.Fatalf("recorded %q", got)
	}

	if err := h.SetAgentConnected(runningUUID, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx, runningUUID); !errors.Is(err, guestagent.ErrAgentUnavailable) {
		t.Fatalf("disconnected: %v", err)
	}
}

func TestMutations(t *testing.T) {
	h := newFake()
	ctx := context.Background()
	if err := h.SetState(runningUUID, hypervisor.StatePaused); err != nil {
		t.Fatal(err)
	}
	d, err := h.Domain(ctx, runningUUID)
	if err != nil || d.State != hypervisor.StatePaused {
		t.Fatalf("%+v %v", d, err)
	}
	// Returned domains are copies.
	d.Disks[0].BackingChain[0].Path = "changed"
	d2, _ := h.Domain(ctx, runningUUID)
	if d2.Disks[0].BackingChain[0].Path != "/img/vda-d1.qcow2" {
		t.Fatal("caller modified the fake's domain")
	}
	x, err := h.DomainXML(ctx, runningUUID, false)
	if err != nil || !strings.Contains(x, "/img/vda-d1.qcow2") || !strings.Contains(x, "<backingStore") {
		t.Fatalf("generated xml %s %v", x, err)
	}
	h.RemoveDomain(runningUUID)
	if _, err := h.Domain(ctx, runningUUID); !errors.Is(err, hypervisor.ErrDomainNotFound) {
		t.Fatalf("after remove: %v", err)
	}
	doms, _ := h.ListDomains(ctx)
	if len(doms) != 1 || doms[0].UUID != strings.ToLower(stoppedUUID) || doms[0].State != hypervisor.StateShutoff {
		t.Fatalf("listed %+v", doms)
	}
}

// The chain conformance suite on the fake, with real qcow2 files.
func TestChainOpsConformance(t *testing.T) {
	hvtest.RunChainOps(t, func(*testing.T) hvtest.ChainHV { return fake.New() }, hvtest.ChainEnv{Dir: t.TempDir(), Prefix: "knib-hvt-"})
}

// The events conformance suite on the fake.
func TestEventsConformance(t *testing.T) {
	hvtest.RunEvents(t, func(*testing.T) hvtest.EventsHV { return fake.New() }, hvtest.ChainEnv{Prefix: "knib-hvt-ev-"})
}

// DropWatches stands for a lost connection: the watch resyncs and goes on.
func TestDropWatchesResyncs(t *testing.T) {
	h := fake.New()
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := h.WatchDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const u = "6695eb01-f6a4-8304-79aa-97f2502e193f"
	h.DropWatches()
	h.PutDomain(hypervisor.Domain{UUID: u, Name: "web"})
	var got []hypervisor.DomainEvent
	for len(got) < 3 {
		got = append(got, <-events)
	}
	want := []hypervisor.DomainEvent{{Kind: hypervisor.EventResync}, {Kind: hypervisor.EventResync}, {Kind: hypervisor.EventDefined, UUID: u, Name: "web"}}
	if !slices.Equal(got, want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
}
