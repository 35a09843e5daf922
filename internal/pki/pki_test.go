package pki

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCAIssuesAndVerifies(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ca, err := NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if again.Pin() != ca.Pin() || len(ca.Pin()) != 64 {
		t.Fatalf("pin changed across load: %s vs %s", again.Pin(), ca.Pin())
	}
	key, _, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NewCSR(key, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := again.SignCSR(csr, "host-a", now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if iss.Cert.Subject.CommonName != "host-a" || RoleOf(iss.Cert) != RoleAgent || iss.Serial == "" {
		t.Fatalf("issued %+v role %s", iss.Cert.Subject, RoleOf(iss.Cert))
	}
	leaf, err := ca.Verify([]*x509.Certificate{iss.Cert}, RoleAgent, now)
	if err != nil || leaf != iss.Cert {
		t.Fatalf("verify: %v", err)
	}
	if _, err := ca.Verify([]*x509.Certificate{iss.Cert}, RoleServer, now); !errors.Is(err, ErrWrongRole) {
		t.Fatalf("agent cert accepted as server: %v", err)
	}
	if _, err := ca.Verify([]*x509.Certificate{iss.Cert}, RoleAgent, now.Add(48*time.Hour)); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("expired cert accepted: %v", err)
	}
	// A certificate from another CA, even with the right role and name.
	other, err := NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.Sign(&key.PublicKey, RoleAgent, "host-a", nil, nil, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Verify([]*x509.Certificate{forged.Cert}, RoleAgent, now); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("other CA's cert accepted: %v", err)
	}
	// Presenting the real CA in the chain does not help a forged leaf.
	if _, err := ca.Verify([]*x509.Certificate{forged.Cert, ca.Cert}, RoleAgent, now); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("forged leaf with real CA accepted: %v", err)
	}
	if _, err := ca.Verify(nil, RoleAgent, now); err == nil {
		t.Fatal("empty chain accepted")
	}
}

func TestSignCSRRefusesBadRequests(t *testing.T) {
	now := time.Now()
	ca, err := NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.SignCSR([]byte("garbage"), "h", now, time.Hour); err == nil {
		t.Fatal("garbage CSR signed")
	}
	key, _, _ := NewKey()
	csr, _ := NewCSR(key, "h")
	bad := []byte(strings.Replace(string(csr), "CERTIFICATE REQUEST", "CERTIFICATE", -1))
	if _, err := ca.SignCSR(bad, "h", now, time.Hour); err == nil {
		t.Fatal("wrong PEM type signed")
	}
	if _, err := LoadCA(ca.CertPEM, func() []byte { _, k, _ := NewKey(); return k }()); err == nil {
		t.Fatal("CA loaded with a key that is not its own")
	}
}

func TestJoinToken(t *testing.T) {
	ca, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := NewJoinToken(ca.Pin())
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	back, err := ParseJoinToken(s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if back != tok || back.Pin != ca.Pin() {
		t.Fatalf("round trip: %+v vs %+v", back, tok)
	}
	if !back.Matches(tok.Hash()) || strings.Contains(tok.Hash(), tok.Secret) {
		t.Fatal("hash does not match or contains the secret")
	}
	other, _ := NewJoinToken(ca.Pin())
	if other.Matches(tok.Hash()) || other.ID == tok.ID {
		t.Fatal("two tokens collide")
	}
	for _, bad := range []string{"", "knibjoin", "knibjoin.a.b.c", "x" + s[1:], s + ".x",
		strings.Replace(s, tok.Secret, strings.ToUpper(tok.Secret), 1), strings.Replace(s, tok.Pin, tok.Pin[:60], 1)} {
		_, err := ParseJoinToken(bad)
		if !errors.Is(err, ErrMalformedToken) {
			t.Errorf("%q: %v", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), tok.Secret) {
			t.Errorf("error echoes the secret")
		}
	}
	if _, err := NewJoinToken("short"); err == nil {
		t.Fatal("bad pin accepted")
	}
}
