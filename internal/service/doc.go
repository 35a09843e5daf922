// Package service holds knib's use cases: what the server does for each API
// request, independent of HTTP. It checks who may do what (domain.Principal),
// validates input, records intent in the store, and drives hosts through
// their agents (agentapi.Agent).
//
// Vocabulary:
//   - principal: the authenticated caller; users see only their account's VMs,
//     and offerings, hosts, settings and jobs are admin-only.
//   - inventory sync: reading every host's domains into the catalogue.
//   - operation: a long request answered at once with an id; Service.start
//     records it before any work and updates its state and progress.
package service
