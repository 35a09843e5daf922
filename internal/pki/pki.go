package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

// Role is what a certificate's holder is.
type Role string

// Roles.
const (
	RoleServer Role = "knib-server"
	RoleAgent  Role = "knib-agent"
)

// Errors.
var (
	ErrUntrusted = errors.New("certificate not issued by this installation's CA")
	ErrWrongRole = errors.New("certificate has the wrong role")
)

// CA is the installation's certificate authority.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA creates a CA valid for ten years from now.
func NewCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "knib CA", Organization: []string{"knib"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return LoadCA(pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", keyDER))
}

// LoadCA reads a CA from its PEM certificate and key.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("CA certificate is not a CA")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("CA key: no PEM block")
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("CA key does not match its certificate")
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// Pin is the CA certificate's SHA-256 in hex, as join tokens carry it.
func (ca *CA) Pin() string { return PinOf(ca.Cert) }

// PinOf is a certificate's SHA-256 (of its DER) in hex.
func PinOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Pool is a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issued is a certificate the CA signed.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Serial  string // hex
}

// Sign issues a certificate for pub with a role and common name, valid for
// ttl. Both server and agent certificates are usable for TLS servers and
// clients: each side serves and calls the other.
func (ca *CA) Sign(pub crypto.PublicKey, role Role, cn string, ips []net.IP, dns []string, now time.Time, ttl time.Duration) (Issued, error) {
	if role != RoleServer && role != RoleAgent {
		return Issued{}, fmt.Errorf("unknown role %q", role)
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		return Issued{}, errors.New("only ECDSA public keys are accepted")
	}
	serial, err := newSerial()
	if err != nil {
		return Issued{}, err
	}
	tpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, OrganizationalUnit: []string{string(role)}, Organization: []string{"knib"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
		DNSNames:     dns,
	}
	if tpl.NotAfter.After(ca.Cert.NotAfter) {
		tpl.NotAfter = ca.Cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return Issued{}, fmt.Errorf("sign certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return Issued{}, err
	}
	return Issued{Cert: c, CertPEM: pemBlock("CERTIFICATE", der), Serial: SerialOf(c)}, nil
}

// SignCSR checks a certificate request's signature and issues an agent
// certificate for its key with common name cn (the request's own subject is
// ignored).
func (ca *CA) SignCSR(csrPEM []byte, cn string, now time.Time, ttl time.Duration) (Issued, error) {
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return Issued{}, errors.New("certificate request: no PEM CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return Issued{}, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return Issued{}, fmt.Errorf("certificate request signature: %w", err)
	}
	return ca.Sign(csr.PublicKey, RoleAgent, cn, nil, nil, now, ttl)
}

// Verify checks that chain[0] was issued by this CA for role at now and
// returns it. It does not check host names: knib identifies peers by role
// and common name.
func (ca *CA) Verify(chain []*x509.Certificate, role Role, now time.Time) (*x509.Certificate, error) {
	return VerifyWith(ca.Cert, chain, role, now)
}

// VerifyWith is Verify against a CA certificate alone (what an agent holds).
func VerifyWith(caCert *x509.Certificate, chain []*x509.Certificate, role Role, now time.Time) (*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("no certificate presented")
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	leaf := chain[0]
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	if RoleOf(leaf) != role {
		return nil, fmt.Errorf("%w: want %s, got %q", ErrWrongRole, role, RoleOf(leaf))
	}
	return leaf, nil
}

// RoleOf is a certificate's role ("" when it has none).
func RoleOf(c *x509.Certificate) Role {
	for _, ou := range c.Subject.OrganizationalUnit {
		if r := Role(ou); r == RoleServer || r == RoleAgent {
			return r
		}
	}
	return ""
}

// SerialOf is a certificate's serial number in hex.
func SerialOf(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// NewKey generates an ECDSA P-256 private key and returns it with its PEM.
func NewKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pemBlock("EC PRIVATE KEY", der), nil
}

// NewCSR makes a certificate request for key with common name cn.
func NewCSR(key *ecdsa.PrivateKey, cn string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		return nil, err
	}
	return pemBlock("CERTIFICATE REQUEST", der), nil
}

// ParseCert reads the first certificate of a PEM text.
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(b.Bytes)
}

// LocalIPs are the addresses a server certificate names: loopback and the
// machine's interface addresses.
func LocalIPs() []net.IP {
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !slices.ContainsFunc(ips, n.IP.Equal) {
			ips = append(ips, n.IP)
		}
	}
	return ips
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// validHex reports whether s is lower-case hex of length n.
func validHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// TLSCert assembles a TLS certificate from a leaf, its key and the CA
// certificate (sent along so that peers can check their pin).
func TLSCert(leafPEM, keyPEM []byte, caCert *x509.Certificate) (tls.Certificate, error) {
	c, err := tls.X509KeyPair(leafPEM, keyPEM)
	if err != nil {
		return c, err
	}
	if caCert != nil {
		c.Certificate = append(c.Certificate, caCert.Raw)
	}
	return c, nil
}

// ServerIdentity issues a fresh key and certificate with the server role for
// this process (kept in memory only).
func (ca *CA) ServerIdentity(name string, now time.Time) (tls.Certificate, error) {
	key, keyPEM, err := NewKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	dns := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		dns = append(dns, h)
	}
	iss, err := ca.Sign(&key.PublicKey, RoleServer, name, LocalIPs(), dns, now, 365*24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	return TLSCert(iss.CertPEM, keyPEM, ca.Cert)
}
