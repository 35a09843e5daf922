// Package agentapi is the contract between the server and the agent that runs
// on each KVM host: typed commands and answers, so that the in-process agent
// of an all-in-one server and a remote agent behind HTTPS (agentrpc, the only
// place they are JSON) are interchangeable.
//
// Vocabulary:
//   - command: one host operation. Short ones are methods of Agent
//     (HostReport, Inventory, Domain, GuestExec). Long ones are descriptors,
//     Command[Req, Res] (commands.go: TakeBackup, Restore, ...), naming the
//     request and result types; a call site reads
//     kernel.Run(ctx, agent, agentapi.TakeBackup, req, ...).
//   - task: one run of a long command. StartTask returns at once; the caller
//     polls TaskStatus for state, progress and the typed result. Tasks carry
//     an id chosen by the server, so a retried StartTask finds the running
//     task instead of starting a second one.
//   - storage root (InStorage): the backup storage a request works in, a
//     field of the request; there is no default.
//   - job attempt (JobAttempt): the background job and attempt a request
//     runs for; the task id derives from it.
//   - host report: what a host says about itself (versions, capacity, the
//     settings in its agent configuration file).
//   - inventory: the libvirt domains of the host with their disks and backing
//     chains as libvirt sees them.
//   - change mark (ChangeMark): how far the changes of a host's domains
//     went, as its agent counts them; WaitInventoryChange waits for the
//     mark to move, so the server re-reads the inventory as soon as a VM
//     is defined, undefined, started or stopped on the host.
package agentapi
