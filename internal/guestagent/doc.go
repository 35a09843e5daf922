// Package guestagent speaks the QEMU guest agent (qemu-ga) protocol, over
// whatever carries the messages.
//
// Vocabulary:
//
//   - guest agent: the qemu-ga daemon inside a VM, reached through a
//     virtio-serial channel named org.qemu.guest_agent.0.
//   - command: one JSON object {"execute": NAME, "arguments": {...}} sent to
//     the agent; "arguments" is left out when a command takes none.
//   - reply: the agent's JSON answer, either {"return": VALUE} or
//     {"error": {"class": CLASS, "desc": TEXT}}. An error reply becomes an
//     *AgentError.
//   - transport: anything that delivers one command to the agent of a
//     domain (named by its UUID) and hands back the raw reply; see
//     Transport. The libvirt adapter in internal/hypervisor/libvirt is one.
//   - sync: the guest-sync handshake; the agent echoes a random id, which
//     proves the channel carries replies to our commands and not stale ones.
//   - exec: guest-exec starts a program in the guest (path, argument
//     vector, environment, optional standard input) and returns a pid;
//     guest-exec-status is polled until the program has exited, and then
//     carries the exit code (or terminating signal) and the captured
//     standard output and error, Base64-encoded and possibly truncated by
//     the agent.
//
// Every message is built with encoding/json from Go values, so argument
// strings reach the guest byte for byte, whatever quotes, backslashes or
// braces they contain; nothing is ever formatted into JSON text by hand.
package guestagent
