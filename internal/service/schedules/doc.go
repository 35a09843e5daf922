// Package schedules holds backup schedules and their retention.
//
// Vocabulary:
//   - retention: the oldest backups of a schedule beyond its maximum are
//     deleted with the chain rules after each scheduled backup.
package schedules
