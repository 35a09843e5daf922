package fake

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"

	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/guestagent"
	"github.com/knib/knib/internal/hypervisor"
)

// Hypervisor is the fake. The zero value is not usable; call New. All
// methods are safe for concurrent use.
type Hypervisor struct {
	mu      sync.Mutex
	host    hypervisor.HostInfo
	order   []string
	domains map[string]*entry
	exec    func(uuid string, req guestagent.ExecRequest) (guestagent.ExecResult, error)
	closed  bool
	faults  map[string][]*fault // FailOn (chainops.go)
	calls   map[string]int
	serial  int
	watches map[*watch]bool // WatchDomains (events.go)
}

type entry struct {
	dom             hypervisor.Domain
	liveXML, defXML string
	mime            string
	screenshot      []byte
	agentDown       bool
	script          []AgentReply
	commands        []string
	nextPID         int
	execs           map[int]guestagent.ExecResult
	jobs            map[string]*blockJob // block jobs by disk target (chainops.go)
	customDef       bool                 // defXML came from DefineDomain
}

// AgentReply is one scripted answer to a guest agent command: the raw
// reply, or a transport error.
type AgentReply struct {
	Reply []byte
	Err   error
}

var _ hypervisor.Hypervisor = (*Hypervisor)(nil)

// New returns an empty fake with plausible host information.
func New() *Hypervisor {
	return &Hypervisor{
		host: hypervisor.HostInfo{
			Hostname: "fake-host", URI: "fake:///system", LibvirtVersion: "9.0.0",
			HypervisorVersion: "7.2.0", CPUs: 4, MemoryBytes: 8 << 30,
		},
		domains: map[string]*entry{},
	}
}

// SetHostInfo replaces the host information.
func (h *Hypervisor) SetHostInfo(hi hypervisor.HostInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.host = hi
}

// PutDomain adds or replaces a domain (its UUID is canonicalised; a
// malformed one panics). Its XML is generated from d unless SetDomainXML
// sets other; an empty State means shutoff.
func (h *Hypervisor) PutDomain(d hypervisor.Domain) {
	u, err := hypervisor.CanonicalUUID(d.UUID)
	if err != nil {
		panic(fmt.Sprintf("fake: PutDomain: %v", err))
	}
	d.UUID = u
	if d.State == "" {
		d.State = hypervisor.StateShutoff
	}
	d.Disks = slices.Clone(d.Disks)
	h.mu.Lock()
	defer h.mu.Unlock()
	from := hypervisor.StateShutoff
	e, ok := h.domains[u]
	if !ok {
		e = &entry{nextPID: 1000, execs: map[int]guestagent.ExecResult{}}
		h.domains[u] = e
		h.order = append(h.order, u)
	} else {
		from = e.dom.State
	}
	e.dom = d
	x := generateXML(d)
	e.liveXML, e.defXML = x, x
	h.notify(hypervisor.DomainEvent{Kind: hypervisor.EventDefined, UUID: u, Name: d.Name})
	h.notifyState(d, from)
}

// SetDomainXML replaces the live and inactive XML DomainXML returns.
func (h *Hypervisor) SetDomainXML(uuid, live, inactive string) error {
	return h.with(uuid, func(e *entry) { e.liveXML, e.defXML = live, inactive })
}

// SetState changes a domain's state.
func (h *Hypervisor) SetState(uuid string, s hypervisor.DomainState) error {
	return h.with(uuid, func(e *entry) {
		from := e.dom.State
		e.dom.State = s
		h.notifyState(e.dom, from)
	})
}

// RemoveDomain deletes a domain; absent ones are fine.
func (h *Hypervisor) RemoveDomain(uuid string) {
	u, err := hypervisor.CanonicalUUID(uuid)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.domains[u]
	if !ok {
		return
	}
	delete(h.domains, u)
	h.order = slices.DeleteFunc(h.order, func(s string) bool { return s == u })
	h.notify(hypervisor.DomainEvent{Kind: hypervisor.EventUndefined, UUID: u, Name: e.dom.Name})
}

// SetScreenshot sets what Screenshot returns for a running domain; without
// it the domain has no display.
func (h *Hypervisor) SetScreenshot(uuid, mime string, data []byte) error {
	return h.with(uuid, func(e *entry) { e.mime, e.screenshot = mime, slices.Clone(data) })
}

// SetAgentConnected marks the domain's guest agent as (dis)connected.
// Agents start connected; they only answer while the domain runs.
func (h *Hypervisor) SetAgentConnected(uuid string, connected bool) error {
	return h.with(uuid, func(e *entry) { e.agentDown = !connected })
}

// ScriptAgent queues raw replies for the domain's next agent commands.
func (h *Hypervisor) ScriptAgent(uuid string, replies ...AgentReply) error {
	return h.with(uuid, func(e *entry) { e.script = append(e.script, replies...) })
}

// SetExec sets the function that runs guest-exec commands of the built-in
// agent (all domains). Without it guest-exec fails with an error reply.
func (h *Hypervisor) SetExec(fn func(uuid string, req guestagent.ExecRequest) (guestagent.ExecResult, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.exec = fn
}

// AgentCommands returns the commands sent to the domain's agent so far.
func (h *Hypervisor) AgentCommands(uuid string) []string {
	var out []string
	_ = h.with(uuid, func(e *entry) { out = slices.Clone(e.commands) })
	return out
}

func (h *Hypervisor) with(uuid string, fn func(*entry)) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return err
	}
	fn(e)
	return nil
}

// find looks a domain up; h.mu must be held.
func (h *Hypervisor) find(uuid string) (*entry, error) {
	u, err := hypervisor.CanonicalUUID(uuid)
	if err != nil {
		return nil, err
	}
	e, ok := h.domains[u]
	if !ok {
		return nil, fmt.Errorf("domain %s: %w", u, hypervisor.ErrDomainNotFound)
	}
	return e, nil
}

// begin checks ctx and Close; on success h.mu is held.
func (h *Hypervisor) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return hypervisor.ErrClosed
	}
	return nil
}

func clone(d hypervisor.Domain) hypervisor.Domain {
	d.Disks = slices.Clone(d.Disks)
	for i := range d.Disks {
		d.Disks[i].BackingChain = slices.Clone(d.Disks[i].BackingChain)
	}
	return d
}

// HostInfo implements hypervisor.Hypervisor.
func (h *Hypervisor) HostInfo(ctx context.Context) (hypervisor.HostInfo, error) {
	if err := h.begin(ctx); err != nil {
		return hypervisor.HostInfo{}, err
	}
	defer h.mu.Unlock()
	return h.host, nil
}

// ListDomains implements hypervisor.Hypervisor.
func (h *Hypervisor) ListDomains(ctx context.Context) ([]hypervisor.Domain, error) {
	if err := h.begin(ctx); err != nil {
		return nil, err
	}
	defer h.mu.Unlock()
	out := make([]hypervisor.Domain, 0, len(h.order))
	for _, u := range h.order {
		if !running(h.domains[u]) {
			reprobe(h.domains[u]) // stopped: the chain is what the files say
		}
		out = append(out, clone(h.domains[u].dom))
	}
	return out, nil
}

// Domain implements hypervisor.Hypervisor.
func (h *Hypervisor) Domain(ctx context.Context, uuid string) (hypervisor.Domain, error) {
	if err := h.begin(ctx); err != nil {
		return hypervisor.Domain{}, err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return hypervisor.Domain{}, err
	}
	if !running(e) {
		reprobe(e) // stopped: the chain is what the files say
	}
	return clone(e.dom), nil
}

// DomainXML implements hypervisor.Hypervisor.
func (h *Hypervisor) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	if err := h.begin(ctx); err != nil {
		return "", err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return "", err
	}
	if inactive {
		return e.defXML, nil
	}
	return e.liveXML, nil
}

// Screenshot implements hypervisor.Hypervisor.
func (h *Hypervisor) Screenshot(ctx context.Context, uuid string, w io.Writer) (string, error) {
	if err := h.begin(ctx); err != nil {
		return "", err
	}
	e, err := h.find(uuid)
	if err != nil {
		h.mu.Unlock()
		return "", err
	}
	running := e.dom.State == hypervisor.StateRunning || e.dom.State == hypervisor.StatePaused
	mime, data := e.mime, e.screenshot
	h.mu.Unlock()
	if !running || mime == "" {
		return "", fmt.Errorf("screenshot of domain %s: %w", uuid, hypervisor.ErrUnsupported)
	}
	if _, err := w.Write(data); err != nil {
		return "", fmt.Errorf("screenshot of domain %s: write: %w", uuid, err)
	}
	return mime, nil
}

// Close implements hypervisor.Hypervisor; it ends the watches.
func (h *Hypervisor) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.closeWatches()
	return nil
}

// AgentCommand implements guestagent.Transport.
func (h *Hypervisor) AgentCommand(ctx context.Context, uuid string, command []byte) ([]byte, error) {
	if err := h.begin(ctx); err != nil {
		return nil, err
	}
	e, err := h.find(uuid)
	if err != nil {
		h.mu.Unlock()
		return nil, err
	}
	e.commands = append(e.commands, string(command))
	if len(e.script) > 0 {
		r := e.script[0]
		e.script = e.script[1:]
		h.mu.Unlock()
		return slices.Clone(r.Reply), r.Err
	}
	if e.dom.State != hypervisor.StateRunning || e.agentDown {
		h.mu.Unlock()
		return nil, fmt.Errorf("domain %s: %w", uuid, guestagent.ErrAgentUnavailable)
	}
	exec := h.exec
	h.mu.Unlock()
	return h.builtinAgent(uuid, e, exec, command)
}

type agentCommand struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
}

func returnReply(v any) ([]byte, error) { return json.Marshal(map[string]any{"return": v}) }

func errorReply(class, desc string) ([]byte, error) {
	return json.Marshal(map[string]any{"error": map[string]string{"class": class, "desc": desc}})
}

// builtinAgent answers like a minimal qemu-ga.
func (h *Hypervisor) builtinAgent(uuid string, e *entry, exec func(string, guestagent.ExecRequest) (guestagent.ExecResult, error), command []byte) ([]byte, error) {
	var cmd agentCommand
	dec := json.NewDecoder(bytes.NewReader(command))
	if err := dec.Decode(&cmd); err != nil {
		return errorReply("GenericError", "JSON parse error: "+err.Error())
	}
	switch cmd.Execute {
	case "guest-ping":
		return returnReply(struct{}{})
	case "guest-sync":
		var a struct {
			ID json.Number `json:"id"`
		}
		if err := json.Unmarshal(cmd.Arguments, &a); err != nil {
			return errorReply("GenericError", err.Error())
		}
		return []byte(`{"return":` + a.ID.String() + `}`), nil
	case "guest-exec":
		var a struct {
			Path      string   `json:"path"`
			Arg       []string `json:"arg"`
			Env       []string `json:"env"`
			InputData string   `json:"input-data"`
		}
		if err := json.Unmarshal(cmd.Arguments, &a); err != nil {
			return errorReply("GenericError", err.Error())
		}
		if exec == nil {
			return errorReply("GenericError", "Failed to execute child process (fake has no Exec)")
		}
		input, err := base64.StdEncoding.DecodeString(a.InputData)
		if err != nil {
			return errorReply("GenericError", err.Error())
		}
		res, err := exec(uuid, guestagent.ExecRequest{Path: a.Path, Args: a.Arg, Env: a.Env, Input: input})
		if err != nil {
			return errorReply("GenericError", err.Error())
		}
		h.mu.Lock()
		pid := e.nextPID
		e.nextPID++
		e.execs[pid] = res
		h.mu.Unlock()
		return returnReply(map[string]int{"pid": pid})
	case "guest-exec-status":
		var a struct {
			PID int `json:"pid"`
		}
		if err := json.Unmarshal(cmd.Arguments, &a); err != nil {
			return errorReply("GenericError", err.Error())
		}
		h.mu.Lock()
		res, ok := e.execs[a.PID]
		delete(e.execs, a.PID)
		h.mu.Unlock()
		if !ok {
			return errorReply("GenericError", "Invalid parameter 'pid'")
		}
		st := map[string]any{
			"exited": true, "out-data": base64.StdEncoding.EncodeToString(res.Stdout),
			"err-data": base64.StdEncoding.EncodeToString(res.Stderr),
		}
		if res.Signal != 0 {
			st["signal"] = res.Signal
		} else {
			st["exitcode"] = res.ExitCode
		}
		if res.Truncated {
			st["out-truncated"] = true
		}
		return returnReply(st)
	}
	return errorReply("CommandNotFound", "The command "+cmd.Execute+" has not been found")
}

// generateXML renders a libvirt-like definition of d.
func generateXML(d hypervisor.Domain) string {
	x := libvirtxml.Domain{Type: "qemu", Name: d.Name, UUID: d.UUID, Devices: &libvirtxml.DomainDeviceList{}}
	for _, disk := range d.Disks {
		xd := libvirtxml.DomainDisk{
			Device: disk.Device,
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: disk.Format},
			Target: &libvirtxml.DomainDiskTarget{Dev: disk.Target, Bus: disk.Bus},
			Source: source(disk.SourceType, disk.Source),
		}
		next := &xd.BackingStore
		for _, l := range disk.BackingChain {
			bs := &libvirtxml.DomainDiskBackingStore{
				Format: &libvirtxml.DomainDiskFormat{Type: l.Format},
				Source: source("file", l.Path),
			}
			*next = bs
			next = &bs.BackingStore
		}
		*next = &libvirtxml.DomainDiskBackingStore{}
		x.Devices.Disks = append(x.Devices.Disks, xd)
	}
	s, err := x.Marshal()
	if err != nil {
		panic(fmt.Sprintf("fake: marshal domain xml: %v", err))
	}
	return s
}

func source(typ, path string) *libvirtxml.DomainDiskSource {
	switch typ {
	case "file":
		return &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}}
	case "block":
		return &libvirtxml.DomainDiskSource{Block: &libvirtxml.DomainDiskSourceBlock{Dev: path}}
	case "dir":
		return &libvirtxml.DomainDiskSource{Dir: &libvirtxml.DomainDiskSourceDir{Dir: path}}
	}
	return nil
}
