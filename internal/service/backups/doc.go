// Package backups holds backups: a backup runs as plan (pure, chain.PlanBackup), record the intent, execute on the agent (agentapi.TakeBackup), commit; listing; deletion with the chain rules; finishing a chain.
//
// Vocabulary:
//   - intent: the backup row (BackingUp, with its plan) and the VM's
//     BackingUp state, stored before any disk changes.
//   - commit: the backup's files and the new chain head, stored in one
//     transaction from what the agent reports.
package backups
