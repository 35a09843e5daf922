// Package accounts holds accounts, API tokens, authentication, resource limits and their usage.
//
// Vocabulary:
//   - usage: what an account's VMs and running validation VMs take (VMs,
//     vCPUs, memory), held against its limits before a validation VM starts.
package accounts
