// Package fake is an in-memory hypervisor.Hypervisor for unit tests of the
// packages that use the port.
//
// Vocabulary:
//
//   - domain table: the domains a test puts in (PutDomain), keyed by UUID
//     and listed in insertion order.
//   - built-in agent: what answers guest agent commands of a running domain
//     unless the test scripted replies: guest-ping, guest-sync (echoing the
//     id), and guest-exec / guest-exec-status backed by the test's Exec
//     function. Other commands get a CommandNotFound error reply.
//   - scripted reply: a raw reply (or transport error) queued with
//     ScriptAgent; queued replies are consumed first, one per command.
//   - watch: a WatchDomains channel; every change a test or a ChainOps
//     call makes to the domain table (PutDomain, SetState, RemoveDomain,
//     define, start, destroy, undefine) is delivered to every watch, after
//     the resync that opens it. DropWatches stands for a lost connection.
//
// The fake passes the hvtest conformance suite.
package fake
