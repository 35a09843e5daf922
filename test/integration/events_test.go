package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

// Both servers here read the inventory periodically only every 10
// minutes: only libvirt's domain events (and, for `vm show` of an unknown
// name, the re-read of the hosts) can explain the catalogue following.
const noReconcile = "10m"

// followWait bounds each wait for the catalogue to follow a change. It is
// a guard against a hang, not a measure: the events make it follow within
// a second.
const followWait = 90 * time.Second

// vmJSON is the part of `knib vm list/show -o json` these tests read.
type vmJSON struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Host  string `json:"host"`
	State string `json:"state"`
}

// waitListed polls `knib vm list` until the VM is listed on host in state.
func (s *Server) waitListed(name, host, state string) vmJSON {
	s.t.Helper()
	deadline := time.Now().Add(followWait)
	var last []vmJSON
	for {
		var list []vmJSON
		err := s.CLIJSON(&list, "vm", "list", "--limit", "1000")
		if err == nil {
			for _, v := range list {
				if v.Name == name && v.Host == host && v.State == state {
					return v
				}
			}
			last = list
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("vm %s not listed %s on %s after %s (err %v):\n%s\nserver:\n%s", name, state, host, followWait, err, describe(last, name), s.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitShown polls `knib vm show` (of a name the catalogue knows: no
// re-read) until the VM is in state.
func (s *Server) waitShown(name, state string) vmJSON {
	s.t.Helper()
	deadline := time.Now().Add(followWait)
	var v vmJSON
	for {
		err := s.CLIJSON(&v, "vm", "show", name)
		if err == nil && v.State == state {
			return v
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("vm %s: %+v (err %v), want %s after %s\nserver:\n%s", name, v, err, state, followWait, s.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func describe(list []vmJSON, name string) string {
	var b strings.Builder
	for _, v := range list {
		if v.Name == name {
			fmt.Fprintf(&b, "%+v\n", v)
		}
	}
	if b.Len() == 0 {
		return "(not listed)"
	}
	return b.String()
}

// followLifecycle defines, starts, stops and undefines a domain with
// go-libvirt, outside knib, and checks after each step that the catalogue
// follows on host. Before that, `vm show` of another domain, defined a
// moment ago, answers at once (the re-read of the hosts).
func followLifecycle(t *testing.T, s *Server, host, name, showName string) {
	// Shown at once: no wait between the definition and the question.
	fresh := testbed.NewDomain(t, testbed.DomainOptions{Name: showName, NoFormat: true})
	var shown vmJSON
	s.MustJSON(&shown, "vm", "show", showName)
	if shown.ID != fresh.UUID || shown.Host != host || shown.State != "Stopped" {
		t.Fatalf("vm show of a VM defined a moment ago: %+v, want %s on %s, Stopped", shown, fresh.UUID, host)
	}

	d := testbed.NewDomain(t, testbed.DomainOptions{Name: name, NoFormat: true})
	if v := s.waitListed(name, host, "Stopped"); v.ID != d.UUID {
		t.Fatalf("listed %+v, want uuid %s", v, d.UUID)
	}
	if err := d.L.DomainCreate(d.Dom); err != nil {
		t.Fatal(err)
	}
	s.waitShown(name, "Running")
	if err := d.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.waitShown(name, "Stopped")
	if err := testbed.RemoveDomain(d.L, name); err != nil {
		t.Fatal(err)
	}
	s.waitShown(name, "Missing")
}

// TestCatalogueFollowsLibvirt: the all-in-one server's in-process agent
// subscribes to libvirt's domain events; a VM defined, started, stopped
// and undefined outside knib shows in `knib vm list` / `vm show` without
// a refresh and long before the next periodic pass, and `vm show` of a
// VM defined a moment ago works at once.
func TestCatalogueFollowsLibvirt(t *testing.T) {
	testbed.Require(t)
	s := &Server{t: t, DataDir: dataDirFor(t), Listen: freePort(t), ReconcileEvery: noReconcile}
	s.URL = "http://" + s.Listen
	s.start()
	t.Cleanup(s.Stop)
	followLifecycle(t, s, "localhost", "knib-t-ev-local", "knib-t-ev-local-show")
}

// TestRemoteCatalogueFollowsLibvirt: the same through a remote agent (no
// in-process agent): the server long-polls the agent for inventory
// changes over mutual TLS.
func TestRemoteCatalogueFollowsLibvirt(t *testing.T) {
	testbed.Require(t)
	s := &Server{t: t, DataDir: dataDirFor(t), Listen: freePort(t), NoLocalAgent: true, ReconcileEvery: noReconcile}
	s.URL = "http://" + s.Listen
	s.AgentListen = freePort(t)
	s.Args = []string{"--libvirt-uri", "", "--agent-listen", s.AgentListen, "--agent-heartbeat", "1s", "--agent-failures", "2"}
	s.start()
	t.Cleanup(s.Stop)
	ag := s.NewAgent(t, "knib-ev-remote")
	ag.Start(s.joinToken("zone-ev"))
	s.WaitAgentState(ag.Name, "Connected", 2*time.Minute, ag)
	followLifecycle(t, s, ag.Name, "knib-t-ev-remote", "knib-t-ev-remote-show")
}
