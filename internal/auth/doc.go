// Package auth holds the rules for API tokens. Vocabulary:
//   - token: the secret a client sends as "Authorization: Bearer <token>";
//     it has the form "knib_" + 43 base64url characters (256 random bits).
//   - token hash: SHA-256 of the token, hex; the only form ever stored.
//   - admin token: the token the server creates on first start and writes to
//     <data dir>/admin.token with mode 0600.
//
// Who may do what (roles admin and user) is decided by domain.Principal; this
// package only makes and checks secrets. It imports only the standard library.
package auth
