package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// Prefix starts every knib token, so that leaked tokens are easy to find.
const Prefix = "knib_"

// NewToken returns a fresh random token and its hash.
func NewToken() (token, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	token = Prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, Hash(token)
}

// Hash returns the stored form of a token.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ErrMalformed means a presented token does not have the knib token form.
var ErrMalformed = errors.New("malformed token")

// ParseBearer extracts the token from an Authorization header value.
func ParseBearer(header string) (string, error) {
	const scheme = "bearer "
	if len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", ErrMalformed
	}
	tok := strings.TrimSpace(header[len(scheme):])
	if err := CheckForm(tok); err != nil {
		return "", err
	}
	return tok, nil
}

// CheckForm checks that tok looks like a knib token.
func CheckForm(tok string) error {
	if !strings.HasPrefix(tok, Prefix) || len(tok) != len(Prefix)+43 {
		return ErrMalformed
	}
	if _, err := base64.RawURLEncoding.DecodeString(tok[len(Prefix):]); err != nil {
		return ErrMalformed
	}
	return nil
}
