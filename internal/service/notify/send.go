package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Sender delivers one message to a target.
type Sender interface {
	Send(ctx context.Context, t store.NotifyTarget, out Outgoing) error
}

// Outgoing is one message on its way: the delivery id (the same on every
// retry), the body (a Message as JSON), when it is sent, and files an
// e-mail attaches (a webhook links them instead).
type Outgoing struct {
	ID          string
	Body        []byte
	Now         time.Time
	Attachments []Attachment
}

// Attachment is a file attached to an e-mail.
type Attachment struct {
	Name, Type string
	Data       []byte
}

// Webhook headers. The signature is the hex HMAC-SHA256, keyed with the
// target's secret, of the timestamp header's value, a '.', and the body:
// a receiver recomputes it, compares in constant time, and refuses a
// timestamp too far from its clock (a replay).
const (
	HeaderSignature = "Knib-Signature" // "sha256=<hex>"
	HeaderTimestamp = "Knib-Timestamp" // Unix seconds
	HeaderDelivery  = "Knib-Delivery"  // the delivery id (the same on every retry)
	HeaderEvent     = "Knib-Event"     // firing, resolved, digest or test
)

// Sign returns the Knib-Signature value of body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature made by Sign.
func Verify(secret []byte, timestamp string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature))
}

// VerifyFresh is Verify that also refuses a timestamp more than skew away
// from now (a replayed request), as a receiver should check.
func VerifyFresh(secret []byte, timestamp string, body []byte, signature string, now time.Time, skew time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("bad %s %q", HeaderTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > skew || d < -skew {
		return fmt.Errorf("%s %s is %s away from now", HeaderTimestamp, timestamp, d.Round(time.Second))
	}
	if !Verify(secret, timestamp, body, signature) {
		return errors.New("signature does not match")
	}
	return nil
}

// Webhook POSTs the JSON body, signed.
type Webhook struct {
	Client *http.Client // default: 10 s timeout
}

// Send POSTs body to the target's URL; any status but 2xx is an error.
func (w Webhook) Send(ctx context.Context, t store.NotifyTarget, out Outgoing) error {
	body, now, deliveryID := out.Body, out.Now, out.ID
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "knib-notify")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign([]byte(t.Secret), ts, body))
	req.Header.Set(HeaderDelivery, deliveryID)
	var m Message
	if json.Unmarshal(body, &m) == nil {
		req.Header.Set(HeaderEvent, m.Event)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// Mailer sends an e-mail through the target's SMTP server: STARTTLS
// unless the target says "none", AUTH PLAIN when it has a user.
type Mailer struct {
	// RootCAs verifies the server's certificate (nil: the system's).
	TLS *tls.Config
}

// Send mails the message.
func (m Mailer) Send(ctx context.Context, t store.NotifyTarget, out Outgoing) error {
	var msg Message
	if err := json.Unmarshal(out.Body, &msg); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	host, _, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return fmt.Errorf("smtp address %q: %w", t.Addr, err)
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return err
	}
	deadline := clock.Real{}.Now().Add(30 * time.Second) // a socket deadline is real time
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello("knib"); err != nil {
		return err
	}
	if t.StartTLS != "none" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the smtp server does not offer STARTTLS (the target requires it)")
		}
		cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if m.TLS != nil {
			cfg = m.TLS.Clone()
			cfg.ServerName = host
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if t.User != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return errors.New("the smtp server offers no AUTH (the target has a user)")
		}
		var auth smtp.Auth
		switch fields := strings.Fields(strings.ToUpper(mechs)); {
		case slices.Contains(fields, "PLAIN"):
			auth = smtp.PlainAuth("", t.User, t.Secret, host)
		case slices.Contains(fields, "LOGIN"):
			auth = loginAuth{user: t.User, password: t.Secret, host: host}
		default:
			return fmt.Errorf("the smtp server offers neither AUTH PLAIN nor LOGIN (it offers %s)", mechs)
		}
		if err := c.Auth(auth); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(t.From); err != nil {
		return err
	}
	for _, to := range t.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("rcpt %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	raw, err := mailBytes(t, out, msg)
	if err != nil {
		w.Close()
		return err
	}
	if _, err := w.Write(raw); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// loginAuth is AUTH LOGIN (user and password each base64-encoded in
// answer to the server's prompts), refused like net/smtp's PLAIN on a
// connection that is neither TLS nor to localhost.
type loginAuth struct{ user, password, host string }

func (a loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	local := a.host == "localhost" || a.host == "127.0.0.1" || a.host == "::1"
	if !server.TLS && !local {
		return "", nil, errors.New("unencrypted connection")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

func (a loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:", "user name", "username":
		return []byte(a.user), nil
	case "password:", "password":
		return []byte(a.password), nil
	}
	return nil, fmt.Errorf("unexpected AUTH LOGIN prompt %q", fromServer)
}

// Subject is a message's e-mail subject.
func Subject(m Message) string {
	switch m.Event {
	case store.DeliveryDigest:
		return fmt.Sprintf("[knib] daily digest %s: %d conditions", m.Day, len(m.Conditions))
	case store.DeliveryTest:
		return "[knib] test notification"
	}
	return fmt.Sprintf("[knib] %s %s: %s", strings.ToUpper(m.Event), m.Kind, m.Summary)
}

// Text is a message's plain-text body.
func Text(m Message) string {
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	tm := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	write := func(m Message) {
		line("Event", m.Event)
		line("Condition", m.Key)
		line("Kind", m.Kind)
		line("Summary", m.Summary)
		line("Zone", m.ZoneID)
		line("Account", m.AccountID)
		line("First seen", tm(m.FirstSeen))
		line("Resolved", tm(m.ResolvedAt))
		if d := m.Details; d != nil {
			line("VM", d.VM)
			line("VM id", d.VMID)
			line("Backup", d.BackupID)
			line("Job", d.JobID)
			line("Host", d.HostID)
			line("Storage", d.StorageID)
			line("Reason", d.Reason)
			line("Screenshot", d.ScreenshotURL)
		}
	}
	switch m.Event {
	case store.DeliveryDigest:
		fmt.Fprintf(&b, "Conditions of %s (UTC):\r\n\r\n", m.Day)
		for _, c := range m.Conditions {
			write(c)
			b.WriteString("\r\n")
		}
	case store.DeliveryTest:
		b.WriteString("This is a test notification from knib.\r\n")
	default:
		write(m)
	}
	return b.String()
}

func mailBytes(t store.NotifyTarget, out Outgoing, m Message) ([]byte, error) {
	deliveryID, now := out.ID, out.Now
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", t.From)
	hdr("To", strings.Join(t.To, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", Subject(m)))
	hdr("Date", now.Format(time.RFC1123Z))
	domainPart := "knib"
	if _, d, ok := strings.Cut(t.From, "@"); ok {
		domainPart = d
	}
	hdr("Message-ID", "<"+deliveryID+"@"+domainPart+">")
	hdr("MIME-Version", "1.0")
	hdr("X-Knib-Event", m.Event)
	if m.Key != "" {
		hdr("X-Knib-Condition", m.Key)
	}
	if len(out.Attachments) == 0 {
		hdr("Content-Type", "text/plain; charset=utf-8")
		hdr("Content-Transfer-Encoding", "8bit")
		b.WriteString("\r\n")
		b.WriteString(Text(m))
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	hdr("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Transfer-Encoding": {"8bit"}})
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(part, Text(m)); err != nil {
		return nil, err
	}
	for _, a := range out.Attachments {
		part, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {a.Type},
			"Content-Transfer-Encoding": {"base64"},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": a.Name})},
		})
		if err != nil {
			return nil, err
		}
		enc := base64.StdEncoding.EncodeToString(a.Data)
		for len(enc) > 76 {
			io.WriteString(part, enc[:76]+"\r\n")
			enc = enc[76:]
		}
		if _, err := io.WriteString(part, enc+"\r\n"); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Send delivers the due deliveries: each claimed by owner (so that one
// server sends it), sent, and recorded delivered, or retried after a
// backoff that doubles each attempt, or failed after the last attempt.
// It returns how many it delivered.
func (s *Service) Send(ctx context.Context, owner string) (int, error) {
	cfg, err := s.settings(ctx)
	if err != nil {
		return 0, err
	}
	now := s.clock.Now()
	// At most 10 a round, each bounded (10 s a webhook, 30 s an e-mail):
	// the round ends well within the 10-minute claim, so no other server
	// sends the same delivery beside it.
	claimed, err := s.store.ClaimDeliveries(ctx, owner, now, now.Add(10*time.Minute), 10)
	if err != nil {
		return 0, fmt.Errorf("claim deliveries: %w", err)
	}
	n := 0
	var errs []error
	for _, d := range claimed {
		t, err := s.store.NotifyTarget(ctx, d.TargetID)
		if err == nil {
			err = s.senderOf(t).Send(ctx, t, Outgoing{ID: d.ID, Body: []byte(d.Payload), Now: s.clock.Now(), Attachments: s.attachments(ctx, t, d)})
		} else if errors.Is(err, domain.ErrNotFound) {
			err = fmt.Errorf("target removed")
			d.Attempts = cfg.MaxAttempts - 1 // give up now
		}
		d.Attempts++
		if err == nil {
			d.Delivered, d.LastError = s.clock.Now(), ""
			n++
		} else {
			d.LastError = err.Error()
			if d.Attempts >= cfg.MaxAttempts {
				d.Failed = true
				s.log.Warn("notification failed for good", "delivery", d.ID, "target", d.TargetID, "attempts", d.Attempts, "err", err)
			} else {
				d.NextAttempt = s.clock.Now().Add(s.backoff(d.Attempts))
				s.log.Info("notification will be retried", "delivery", d.ID, "target", d.TargetID, "attempts", d.Attempts, "next", d.NextAttempt, "err", err)
			}
		}
		if _, err := s.store.FinishDelivery(ctx, d, owner); err != nil {
			errs = append(errs, fmt.Errorf("record delivery %s: %w", d.ID, err))
		}
	}
	return n, errors.Join(errs...)
}

// attachments are the files an e-mail of d carries: the validation
// screenshot of a firing validation.notvalid. A screenshot that can't be
// read is left out (the message still links it).
func (s *Service) attachments(ctx context.Context, t store.NotifyTarget, d store.NotifyDelivery) []Attachment {
	if t.Kind != store.NotifySMTP || s.screenshot == nil || d.Event != store.DeliveryFiring {
		return nil
	}
	var m Message
	if err := json.Unmarshal([]byte(d.Payload), &m); err != nil || m.Details == nil || m.Details.ScreenshotURL == "" || m.Details.BackupID == "" {
		return nil
	}
	png, err := s.screenshot(ctx, m.Details.BackupID)
	if err != nil {
		s.log.Info("notification without its screenshot", "delivery", d.ID, "backup", m.Details.BackupID, "err", err)
		return nil
	}
	return []Attachment{{Name: "screenshot-" + m.Details.BackupID + ".png", Type: "image/png", Data: png}}
}

func (s *Service) senderOf(t store.NotifyTarget) Sender {
	if snd, ok := s.senders[t.Kind]; ok {
		return snd
	}
	return failing{kind: t.Kind}
}

type failing struct{ kind string }

func (f failing) Send(context.Context, store.NotifyTarget, Outgoing) error {
	return fmt.Errorf("unknown target kind %q", f.kind)
}

// backoff is the delay after the n-th failed attempt: BackoffBase doubled
// n-1 times, at most BackoffMax, with up to 10 % jitter.
func (s *Service) backoff(n int) time.Duration {
	d := s.BackoffBase
	for i := 1; i < n && d < s.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.BackoffMax)
	var b [1]byte
	rand.Read(b[:])
	return d + d*time.Duration(b[0])/2550
}
