package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/service/notify"
	"github.com/knib/knib/internal/service/notify/notifytest"
	"github.com/knib/knib/internal/testbed"
)

// TestNotifyVMBackupErrorOnceThenResolved: a backup interrupted by a crash
// whose disk then goes missing leaves the VM in BackupError; a webhook
// (signature checked) and an e-mail (STARTTLS, AUTH PLAIN, a real SMTP
// server) arrive once, and once more as resolved after the file comes
// back and recovery clears the VM, however many evaluations ran.
func TestNotifyVMBackupErrorOnceThenResolved(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-notify"})
	hook := notifytest.StartWebhook(t, "hook-secret")
	mail := notifytest.StartSMTP(t, "knib", "mail-secret")
	dir := t.TempDir()
	certFile, secretFile, passwordFile := filepath.Join(dir, "smtp.pem"), filepath.Join(dir, "hook.secret"), filepath.Join(dir, "smtp.password")
	for f, b := range map[string][]byte{certFile: mail.CertPEM, secretFile: []byte("hook-secret\n"), passwordFile: []byte("mail-secret\n")} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	trust := "SSL_CERT_FILE=" + certFile // the server verifies the SMTP server's certificate
	s := StartServer(t, "", trust)
	s.CLI("settings", "set", "notify.interval", "1")
	s.CLI("notify", "target", "add", "hook", "--webhook", hook.URL, "--secret-file", secretFile)
	s.CLI("notify", "target", "add", "mail", "--smtp", mail.Addr, "--from", "knib@example.org", "--to", "ops@example.org",
		"--user", "knib", "--password-file", passwordFile)
	if out := s.CLI("notify", "target", "list"); strings.Contains(out, "secret") {
		t.Fatalf("target list shows a secret:\n%s", out)
	}
	s.CLI("notify", "target", "test", "mail")
	s.CLI("notify", "rule", "add", "--target", "hook", "--event", "vm.error")
	s.CLI("notify", "rule", "add", "--target", "mail", "--event", "vm.error")

	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "notify")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	s.Restart("KNIB_CRASH_AT=backup.after-snapshot", trust)
	s.Run(nil, "backup", "create", dom.Name, "--async")
	if err := s.Wait(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	hidden := dom.Disks[0] + ".away"
	if err := os.Rename(dom.Disks[0], hidden); err != nil {
		t.Fatal(err)
	}
	s.ReconcileEvery = "2s"
	s.Restart(trust)

	events := func() (firing, resolved []notify.Message) {
		for _, h := range hook.Hooks() {
			var m notify.Message
			if err := json.Unmarshal(h.Body, &m); err != nil {
				t.Fatal(err)
			}
			if m.Kind == notify.KindVMError { // only this test's VM can be in BackupError in its catalogue
				if m.Event == "firing" {
					firing = append(firing, m)
				} else if m.Event == "resolved" {
					resolved = append(resolved, m)
				}
			}
		}
		return firing, resolved
	}
	mails := func(prefix string) int {
		n := 0
		for _, m := range mail.Mails() {
			if strings.HasPrefix(m.Subject, prefix) {
				n++
			}
		}
		return n
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within a minute; hooks %d, mails %d\nnotify log:\n%s\n%s", what, len(hook.Hooks()), len(mail.Mails()),
					s.CLI("notify", "log"), s.Log())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	waitFor("firing webhook and mail", func() bool {
		f, _ := events()
		return len(f) >= 1 && mails("[knib] FIRING vm.error: VM "+dom.Name+" is in BackupError") >= 1
	})
	time.Sleep(3 * time.Second) // three more evaluations while the VM is still in BackupError
	if err := os.Rename(hidden, dom.Disks[0]); err != nil {
		t.Fatal(err)
	}
	waitRecovered(t, s, dom.Name)
	waitFor("resolved webhook and mail", func() bool {
		_, r := events()
		return len(r) >= 1 && mails("[knib] RESOLVED vm.error") >= 1
	})
	time.Sleep(3 * time.Second) // and three more after it cleared
	firing, resolved := events()
	if len(firing) != 1 || len(resolved) != 1 || resolved[0].Key != firing[0].Key || hook.Rejected() != 0 {
		t.Fatalf("webhooks: firing %+v, resolved %+v, rejected %d", firing, resolved, hook.Rejected())
	}
	if firing[0].Details == nil || firing[0].Details.VM != dom.Name {
		t.Fatalf("the firing message does not name the VM: %+v", firing[0])
	}
	if n, r := mails("[knib] FIRING vm.error"), mails("[knib] RESOLVED vm.error"); n != 1 || r != 1 {
		t.Fatalf("mails: %d firing, %d resolved", n, r)
	}
	for _, m := range mail.Mails() {
		if !m.TLS || m.User != "knib" {
			t.Fatalf("mail without STARTTLS or AUTH: %+v", m)
		}
	}
	if log := s.CLI("notify", "log", "--state", "pending"); strings.Count(log, "\n") > 1 {
		t.Fatalf("deliveries still pending:\n%s", log)
	}
}
