package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/knib/knib/internal/fsatomic"
)

// CAFile is the file in the data directory that holds the certificate of
// knib's own CA, for clients of an API served with a certificate it
// issued (knib --ca-cert, a browser's trust store).
const CAFile = "ca.pem"

// apiTLS returns the TLS configuration of the API listener, or nil for
// plain HTTP: the given certificate and key when set; otherwise, on an
// address other than loopback, a certificate from knib's CA, whose own
// certificate is written to CAFile so that clients can trust it.
func apiTLS(cfg Config, rem *remote) (*tls.Config, error) {
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if err := fsatomic.WriteFile(filepath.Join(cfg.DataDir, CAFile), rem.ca.CertPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write the CA certificate: %w", err)
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case cfg.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("the API's certificate: %w", err)
		}
		base.Certificates = []tls.Certificate{cert}
	case isLoopback(cfg.Listen):
		return nil, nil
	default:
		base.Certificates = []tls.Certificate{rem.cert}
	}
	return base, nil
}

// isLoopback reports whether a listen address only accepts connections
// from this machine; an empty or wildcard host listens on every address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
