package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// tokenPrefix starts every join token.
const tokenPrefix = "knibjoin"

// ErrMalformedToken is a join token that is not of the knib form.
var ErrMalformedToken = errors.New("malformed join token")

// JoinToken is a parsed join token: knibjoin.<id>.<secret>.<ca pin>. The id
// (16 hex) finds the stored record, the secret (64 hex) proves possession,
// the pin (64 hex) is the SHA-256 of the CA certificate.
type JoinToken struct {
	ID     string
	Secret string
	Pin    string
}

// NewJoinToken makes a token for a CA pin.
func NewJoinToken(pin string) (JoinToken, error) {
	if !validHex(pin, 64) {
		return JoinToken{}, fmt.Errorf("CA pin: want 64 hex digits")
	}
	id, err := randomHex(8)
	if err != nil {
		return JoinToken{}, err
	}
	secret, err := randomHex(32)
	if err != nil {
		return JoinToken{}, err
	}
	return JoinToken{ID: id, Secret: secret, Pin: pin}, nil
}

// String is the token as the administrator hands it over.
func (t JoinToken) String() string {
	return tokenPrefix + "." + t.ID + "." + t.Secret + "." + t.Pin
}

// Hash is what the server stores: the SHA-256 of id and secret.
func (t JoinToken) Hash() string {
	sum := sha256.Sum256([]byte(t.ID + "." + t.Secret))
	return hex.EncodeToString(sum[:])
}

// Matches compares the token's hash with a stored one in constant time.
func (t JoinToken) Matches(storedHash string) bool {
	return subtle.ConstantTimeCompare([]byte(t.Hash()), []byte(storedHash)) == 1
}

// ParseJoinToken reads a token; it never echoes the secret in errors.
func ParseJoinToken(s string) (JoinToken, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 4 || parts[0] != tokenPrefix {
		return JoinToken{}, fmt.Errorf("%w: want %s.<id>.<secret>.<ca-sha256>", ErrMalformedToken, tokenPrefix)
	}
	t := JoinToken{ID: parts[1], Secret: parts[2], Pin: parts[3]}
	if !validHex(t.ID, 16) || !validHex(t.Secret, 64) || !validHex(t.Pin, 64) {
		return JoinToken{}, fmt.Errorf("%w: bad id, secret or CA hash", ErrMalformedToken)
	}
	return t, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
