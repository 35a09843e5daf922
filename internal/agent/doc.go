// Package agent is the host role of knib: it executes agentapi commands
// against the local hypervisor, qemu-img and the backup storage mounted on
// the host. The all-in-one server embeds one Local agent; `knib agent` runs
// the same code on a KVM host.
//
// Vocabulary:
//   - Local: the agentapi.Agent implementation that runs commands in this
//     process.
//   - task handler: the function that carries out one kind of long task;
//     handlers report progress and return a JSON-encodable result.
//   - storage root: the backup storage a task works in, the request's
//     TaskRequest.Storage (checked: an absolute, clean path to an existing
//     directory) or else Config.StoragePath; payload paths are relative to
//     it and may not leave it.
//   - change mark: how many domain events of the host the agent has seen
//     in its life (changes.go); WaitInventoryChange answers when it moves.
//   - agent configuration file: agent.properties in the agent's data
//     directory, key=value lines that override settings for this host (the
//     two max.concurrent.operations.per.host keys).
//   - private tree: what the agent writes in a storage is 0750 directories
//     and 0640 files in the QEMU group, the disks it gives VMs 0660
//     (internal/fileperm, perms.go); a storage is tightened once per
//     process, at start (TightenStorage) or by the first task in it, and
//     CheckHost lists what is still open.
//   - file-restore helper: a libguestfs appliance (internal/guestfs) that
//     reads one backup's file systems for ListFiles, ExtractFiles and the
//     files.restore task (files.go); reused while calls come, ended when
//     idle, at most FileSource.MaxHelpers per host; its pid is noted so
//     that EndOrphanedHelpers ends what a dead agent process left.
package agent
