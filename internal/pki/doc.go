// Package pki is knib's small certificate authority and its join tokens.
//
// Vocabulary:
//
//   - CA: one ECDSA P-256 self-signed authority per installation, stored in
//     the database so that every server process shares it.
//   - Role: what a certificate stands for, in its OrganizationalUnit:
//     RoleServer (a knib server process, used both to serve agents and as the
//     client certificate when it calls agents) or RoleAgent (a host agent; its
//     CommonName is the host name).
//   - Identity: a certificate issued by the CA with a role; its serial is
//     recorded by the server so that a revoked identity is refused.
//   - Join token: a one-time secret an administrator hands to a new agent. It
//     embeds the SHA-256 of the CA certificate (the pin), so the agent trusts
//     the server before it sends the secret. Only the secret's hash is stored.
//
// Only the standard library is used.
package pki
