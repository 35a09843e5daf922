// Package jobrun holds the background job runner: compression, validation and re-hash jobs with limits, retries and timeouts.
//
// Vocabulary:
//   - job task: an agent task run for a job attempt; its id derives from the
//     job and the attempt, so that a retry finds a dead runner's task.
package jobrun
