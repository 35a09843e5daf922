// Package archtest holds tests that make the architecture a checked fact:
// the layering rules between packages and the rule that time is read only
// through internal/clock. It has no code of its own.
//
// Vocabulary:
//   - pure core: internal/domain, settings, chain, jobs, schedule, auth and
//     clock; they import the standard library and each other only.
//   - use cases: internal/service and its feature packages; they reach
//     hosts through agentapi and the catalogue through store interfaces,
//     never through an adapter.
//   - adapters: internal/store/sqlstore, internal/hypervisor/..., agentrpc,
//     qemuimg and guestagent; they never import the use cases or the layers
//     above them.
package archtest
