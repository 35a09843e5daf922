package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/client"
)

// startServer runs a server with listen and the given certificate files
// and returns its port and data directory.
func startServer(t *testing.T, listen, cert, key string) (port, dir string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	dir = t.TempDir()
	go func() {
		done <- Run(ctx, Config{DataDir: dir, Database: filepath.Join(dir, "knib.db"), Listen: listen, TLSCert: cert, TLSKey: key,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(addr string) { ready <- addr }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case addr := <-ready:
		_, port, _ = net.SplitHostPort(addr)
		return port, dir
	case err := <-done:
		t.Fatalf("server: %v", err)
	}
	return "", ""
}

// The API is plain HTTP on loopback, HTTPS with a certificate of knib's
// CA on any other address (the CA certificate in ca.pem, which the client
// trusts with --ca-cert), and HTTPS with the operator's certificate when
// given; a session cookie is Secure under TLS.
func TestAPIServesHTTPSOffLoopback(t *testing.T) {
	port, dir := startServer(t, "127.0.0.1:0", "", "")
	resp, err := http.Get("http://127.0.0.1:" + port + "/api/v1/session")
	if err != nil {
		t.Fatalf("plain HTTP on loopback: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /session on loopback: %d", resp.StatusCode)
	}

	port, dir = startServer(t, "0.0.0.0:0", "", "")
	base := "https://127.0.0.1:" + port
	// Plain HTTP is refused, and so is a client that does not trust the CA.
	if resp, err := http.Get("http://127.0.0.1:" + port + "/api/v1/session"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP off loopback: %d", resp.StatusCode)
		}
	}
	if _, err := http.Get(base + "/api/v1/session"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusting client: %v", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(base, strings.TrimSpace(string(tok)))
	if err := c.TrustCA(caPEM); err != nil {
		t.Fatal(err)
	}
	var offerings []map[string]any
	if err := c.Do(context.Background(), "GET", "/offerings", nil, nil, &offerings); err != nil {
		t.Fatalf("a client trusting knib's CA: %v", err)
	}
	// Its certificate names this machine.
	host, _ := os.Hostname()
	conn, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: poolOf(t, caPEM), ServerName: host})
	if err != nil {
		t.Fatalf("the certificate for %s: %v", host, err)
	}
	conn.Close()
	// The session cookie is Secure under TLS.
	hc := c.HTTP
	req, _ := http.NewRequest("POST", base+"/api/v1/session", strings.NewReader(`{"token":"`+strings.TrimSpace(string(tok))+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusOK || len(cookies) == 0 || !cookies[0].Secure || !cookies[0].HttpOnly {
		t.Fatalf("log-in over HTTPS: %d %+v", resp.StatusCode, cookies)
	}

	// The operator's own certificate.
	certFile, keyFile, certPEM := selfSigned(t)
	port, _ = startServer(t, "0.0.0.0:0", certFile, keyFile)
	conn, err = tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: poolOf(t, certPEM), ServerName: "knib.example"})
	if err != nil {
		t.Fatalf("the operator's certificate: %v", err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "knib.example" {
		t.Fatalf("served certificate %q", cn)
	}
	conn.Close()
}

func poolOf(t *testing.T, pemBytes []byte) *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate")
	}
	return p
}

func selfSigned(t *testing.T) (certFile, keyFile string, certPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "knib.example"}, DNSNames: []string{"knib.example"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<35, 0), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, certPEM
}
