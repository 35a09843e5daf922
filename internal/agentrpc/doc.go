// Package agentrpc carries agentapi.Agent calls over HTTPS with mutual TLS.
//
// Vocabulary:
//
//   - Handler: the agent side; serves one agentapi.Agent to callers whose
//     client certificate the installation's CA issued with the server role.
//   - Client: the server side; an agentapi.Agent whose calls go to one remote
//     agent, accepted only if the agent's certificate chains to the CA, has
//     the agent role, names the expected host and carries the recorded serial.
//   - Wire: POST /agent-api/v1/{host-report,inventory,guest-exec,tasks},
//     GET /agent-api/v1/tasks/{id}, POST /agent-api/v1/tasks/{id}/cancel,
//     POST /agent-api/v1/inventory/wait (the long poll of
//     WaitInventoryChange: a ChangeMark in, the agent's mark out);
//     JSON bodies; errors are {"error": message, "code": kind} where code
//     names the agentapi sentinel (unknown_domain, unknown_task,
//     unknown_kind) so errors.Is keeps working across the wire.
//
// Task requests travel as agentapi.TaskRequest JSON, so fields added to it
// pass through unchanged.
package agentrpc
