package hypervisor

import "context"

// EventKind is what happened to a domain.
type EventKind string

// The event kinds. EventResync is not about one domain: the watch has
// (re)subscribed, and whatever happened before it is unknown.
const (
	EventDefined   EventKind = "defined" // defined, or redefined
	EventUndefined EventKind = "undefined"
	EventStarted   EventKind = "started"
	EventSuspended EventKind = "suspended" // paused or PM-suspended
	EventResumed   EventKind = "resumed"
	EventStopped   EventKind = "stopped" // shut off, destroyed, crashed, saved
	EventOther     EventKind = "other"   // e.g. the guest finished its shutdown
	EventResync    EventKind = "resync"
)

// DomainEvent is one change in a domain's life cycle.
type DomainEvent struct {
	Kind EventKind
	// UUID (canonical) and Name of the domain; empty for EventResync.
	UUID string
	Name string
}

// Watcher reports changes of the host's domains as they happen.
//
// Contract:
//   - WatchDomains returns at once a channel on which the watch delivers
//     one DomainEvent per life-cycle change of any domain of the host
//     (defined, undefined, started, suspended, resumed, stopped, ...), in
//     the order the hypervisor reports them, until ctx ends or the
//     Watcher is closed; then the channel is closed. After Close,
//     WatchDomains returns an error wrapping ErrClosed.
//   - The first event is EventResync, delivered once the watch is
//     subscribed: every change after it is reported. When the
//     subscription is lost (the connection to the hypervisor dropped), the
//     watch subscribes again by itself, retrying until ctx ends, and
//     delivers EventResync again: the reader re-reads what it depends on.
//   - A reader that does not keep up delays later events; none is dropped
//     while the subscription holds.
//   - Several watches may run at once; each gets every event.
type Watcher interface {
	WatchDomains(ctx context.Context) (<-chan DomainEvent, error)
}
