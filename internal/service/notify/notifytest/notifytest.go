package notifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/service/notify"
)

// Mail is one message the SMTP server accepted.
type Mail struct {
	From    string
	To      []string
	User    string // who authenticated
	TLS     bool   // received after STARTTLS
	Header  mail.Header
	Body    string // the text (of the text/plain part of a multipart message)
	Subject string
	// Attachments are the non-text parts of a multipart message.
	Attachments []Attachment
}

// Attachment is one attached file, decoded.
type Attachment struct {
	Name, Type string
	Data       []byte
}

// SMTP is a running SMTP server.
type SMTP struct {
	Addr     string
	User     string
	Password string
	RootCAs  *x509.CertPool // trusts the server's certificate
	CertPEM  []byte         // the server's certificate (for SSL_CERT_FILE of another process)

	mechanisms []string
	mu         sync.Mutex
	mail       []Mail
}

// Mails returns the messages received so far.
func (s *SMTP) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

// StartSMTP runs an SMTP server on 127.0.0.1 until the test ends. It
// offers the AUTH mechanisms given (default PLAIN; PLAIN and LOGIN known).
func StartSMTP(t testing.TB, user, password string, mechanisms ...string) *SMTP {
	t.Helper()
	cert, pool := selfSigned(t)
	if len(mechanisms) == 0 {
		mechanisms = []string{sasl.Plain}
	}
	s := &SMTP{User: user, Password: password, RootCAs: pool, mechanisms: mechanisms,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

type session struct {
	srv    *SMTP
	conn   *smtp.Conn
	authed string
	cur    Mail
}

func (s *session) AuthMechanisms() []string { return s.srv.mechanisms }

func (s *session) check(user, password string) error {
	if user != s.srv.User || password != s.srv.Password {
		return errors.New("bad credentials")
	}
	s.authed = user
	return nil
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech == sasl.Login {
		return &loginServer{check: s.check}, nil
	}
	return sasl.NewPlainServer(func(identity, user, password string) error { return s.check(user, password) }), nil
}

// loginServer is the server side of AUTH LOGIN: prompt for the user, then
// the password.
type loginServer struct {
	check func(user, password string) error
	step  int
	user  string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if len(response) > 0 { // an initial response is the user
			l.user, l.step = string(response), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user, l.step = string(response), 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(response))
	}
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.authed == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = Mail{From: from, User: s.authed, TLS: isTLS}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return err
	}
	s.cur.Header, s.cur.Body = m.Header, string(body)
	if mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type")); err == nil && strings.HasPrefix(mt, "multipart/") {
		s.cur.Body = ""
		mr := multipart.NewReader(strings.NewReader(string(body)), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			data, err := io.ReadAll(p)
			if err != nil {
				return err
			}
			if p.Header.Get("Content-Transfer-Encoding") == "base64" {
				if data, err = base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(data))); err != nil {
					return err
				}
			}
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
				s.cur.Body += string(data)
				continue
			}
			s.cur.Attachments = append(s.cur.Attachments, Attachment{Name: p.FileName(), Type: p.Header.Get("Content-Type"), Data: data})
		}
	}
	dec := new(mimeDecoder)
	s.cur.Subject = dec.decode(m.Header.Get("Subject"))
	s.srv.mu.Lock()
	s.srv.mail = append(s.srv.mail, s.cur)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = Mail{} }
func (s *session) Logout() error { return nil }

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Real{}.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "knib test smtp"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// Hook is one webhook request the receiver accepted (signature valid).
type Hook struct {
	Event    string
	Delivery string
	Body     []byte
}

// Webhook is a running HTTP receiver.
type Webhook struct {
	URL    string
	Secret []byte
	// Fail makes the receiver answer 503 while set.
	mu       sync.Mutex
	fail     bool
	hooks    []Hook
	rejected int
}

// Hooks returns the accepted requests.
func (w *Webhook) Hooks() []Hook {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Hook(nil), w.hooks...)
}

// Rejected counts requests whose signature did not verify.
func (w *Webhook) Rejected() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rejected
}

// SetFailing makes the receiver answer 503 (true) or accept again.
func (w *Webhook) SetFailing(f bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail = f
}

// StartWebhook runs a receiver checking signatures made with secret.
func StartWebhook(t testing.TB, secret string) *Webhook {
	w := &Webhook{Secret: []byte(secret)}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			http.Error(rw, "bad request", http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if !notify.Verify(w.Secret, r.Header.Get(notify.HeaderTimestamp), body, r.Header.Get(notify.HeaderSignature)) {
			w.rejected++
			http.Error(rw, "bad signature", http.StatusUnauthorized)
			return
		}
		if w.fail {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		w.hooks = append(w.hooks, Hook{Event: r.Header.Get(notify.HeaderEvent), Delivery: r.Header.Get(notify.HeaderDelivery), Body: body})
	}))
	t.Cleanup(srv.Close)
	w.URL = srv.URL
	return w
}
