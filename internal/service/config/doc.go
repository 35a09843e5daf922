// Package config holds settings at their scopes (global, zone, account, host) and VM details.
//
// Vocabulary:
//   - scope: where a setting value applies; the effective value is resolved
//     by internal/settings.
package config
