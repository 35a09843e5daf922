// Package hvtest is the conformance suite of the hypervisor port: the
// behaviours every hypervisor.Hypervisor implementation must show, run
// against a live instance by Run.
//
// Vocabulary:
//
//   - implementation under test: the Hypervisor that newHV returns; Run
//     asks for a fresh one per subtest and closes it afterwards.
//   - environment (Env): what the caller knows exists on the hypervisor —
//     an expected domain with its disks, a domain whose guest agent answers,
//     a domain with a display. Each check whose environment is missing is
//     skipped, so the same suite runs against the fake, against libvirt's
//     test driver and against a booted guest.
//   - expected domain: the Domain the implementation must report, compared
//     field by field (see Env.Domain for which fields are optional).
//
// RunChainOps checks the ChainOps and Transient contracts on real qcow2
// files, RunEvents the Watcher contract (domain events seen while the
// suite defines, starts, stops and undefines a domain).
package hvtest
