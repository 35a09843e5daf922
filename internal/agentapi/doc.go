// Package agentapi is the contract between the server and the agent that runs
// on each KVM host: typed commands and answers, all JSON-serializable, so the
// in-process agent of an all-in-one server and a remote agent behind HTTPS
// are interchangeable.
//
// Vocabulary:
//   - command: one request to an agent (HostReport, Inventory, GuestExec). A
//     command honours its context's deadline and is idempotent: sending it
//     twice has the effect of sending it once.
//   - task: a long command (backup, restore, ...). StartTask returns at once;
//     the caller polls TaskStatus for state and progress. Tasks carry an id
//     chosen by the server, so a retried StartTask finds the running task
//     instead of starting a second one.
//   - host report: what a host says about itself (versions, capacity, the
//     settings in its agent configuration file).
//   - inventory: the libvirt domains of the host with their disks and backing
//     chains as libvirt sees them.
package agentapi
