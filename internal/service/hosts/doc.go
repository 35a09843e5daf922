// Package hosts holds hosts and their agents: registration, inventory, remote agents joining with a token, connection states, maintenance.
//
// Vocabulary:
//   - join token: a one-time secret that lets an agent get a certificate.
//   - agent up: a reconnected agent is gated (no new work) until its
//     validation cleanup, inventory and recovery ran.
//   - follower: the loop that long-polls one agent for inventory changes
//     and re-reads its host after each (FollowInventory).
package hosts
