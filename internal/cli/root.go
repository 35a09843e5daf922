package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/client"
	"github.com/knib/knib/internal/server"
)

// Defaults shared by the roles and the client commands.
const (
	DefaultDataDir = "/var/lib/knib"
	DefaultListen  = "127.0.0.1:8181"
	DefaultURI     = "qemu:///system"
)

// usageError marks bad command-line usage (exit code 2).
type usageError struct{ error }

// Main runs the CLI with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", " ")
	fmt.Fprintln(stderr, "knib: "+msg)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return 2
	}
	return 1
}

func isCobraUsage(err error) bool {
	m := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "invalid argument", "flag needs an argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

// app carries the global flags to the commands.
type app struct {
	server string
	caCert string
	output string
	async  bool
	out    io.Writer
	errw   io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	a := &app{out: stdout, errw: stderr}
	root := &cobra.Command{
		Use:           "knib",
		Short:         "Incremental, validated, quickly restorable backups for KVM/libvirt VMs",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.output != "table" && a.output != "json" {
				return usageError{fmt.Errorf("--output: want table or json, got %q", a.output)}
			}
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", envOr("KNIB_SERVER", "http://"+DefaultListen), "server URL (env KNIB_SERVER)")
	pf.StringVar(&a.caCert, "ca-cert", os.Getenv("KNIB_CA_CERT"), "PEM file of the CA that issued an HTTPS server's certificate (knib's own: ca.pem in the server's data directory; env KNIB_CA_CERT)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	pf.BoolVar(&a.async, "async", false, "do not wait for long operations; print the operation")
	root.AddCommand(serverCmd(a), agentCmd(a), offeringCmd(a), hostCmd(a), vmCmd(a), settingsCmd(a),
		accountCmd(a), tokenCmd(a), operationCmd(a), whoamiCmd(a), backupCmd(a), chainCmd(a), snapshotCmd(a), jobCmd(a), scheduleCmd(a), devCmd(a))
	root.AddCommand(dbCmd(a))                  // issue 6: PostgreSQL, export/import
	root.AddCommand(storageCmd(a), zoneCmd(a)) // backup storages and zones (storages.go)
	root.AddCommand(auditCmd(a))               // the audit log (audit.go)
	root.AddCommand(notifyCmd(a))              // notifications (notify.go)
	root.AddCommand(remoteCmd(a))              // offsite copies (remotes.go)
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// dataDir is the server's data directory: KNIB_DATA_DIR or the default.
func dataDir() string { return envOr("KNIB_DATA_DIR", DefaultDataDir) }

// client builds an API client with the token from KNIB_TOKEN or the admin
// token file of the local server.
func (a *app) client() (*client.Client, error) {
	tok := os.Getenv("KNIB_TOKEN")
	if tok == "" {
		raw, err := os.ReadFile(filepath.Join(dataDir(), "admin.token"))
		if err != nil {
			return nil, fmt.Errorf("no API token: set KNIB_TOKEN, or run on the server's machine where %s is readable (%v)", filepath.Join(dataDir(), "admin.token"), err)
		}
		tok = strings.TrimSpace(string(raw))
	}
	c := client.New(a.server, tok)
	// An HTTPS server with a certificate from knib's CA: --ca-cert, or the
	// CA file of the local server's data directory when it is readable.
	caFile := a.caCert
	if caFile == "" && strings.HasPrefix(a.server, "https://") {
		if _, err := os.Stat(filepath.Join(dataDir(), server.CAFile)); err == nil {
			caFile = filepath.Join(dataDir(), server.CAFile)
		}
	}
	if caFile != "" {
		raw, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
		if err := c.TrustCA(raw); err != nil {
			return nil, fmt.Errorf("--ca-cert %s: %w", caFile, err)
		}
	}
	return c, nil
}

// call is a shortcut for one API request.
func (a *app) call(cmd *cobra.Command, method, path string, query map[string]string, body, out any) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	q := map[string][]string{}
	for k, v := range query {
		if v != "" {
			q[k] = []string{v}
		}
	}
	return c.Do(cmd.Context(), method, path, q, body, out)
}

// paging is the --limit and --cursor of a list command.
type paging struct {
	limit  int
	cursor string
}

func (pg *paging) flags(cmd *cobra.Command) {
	cmd.Flags().IntVar(&pg.limit, "limit", api.DefaultPage, "items per page (at most 1000)")
	cmd.Flags().StringVar(&pg.cursor, "cursor", "", "start at this page (printed after a page when more follow)")
}

// page GETs one page of a list into out and prints it through fn; when more
// follow it says how to get them, on standard error so that -o json stays
// one JSON array.
func (a *app) page(cmd *cobra.Command, path string, query map[string]string, pg paging, out any, fn func(w *tabwriter.Writer)) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range query {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", strconv.Itoa(pg.limit))
	if pg.cursor != "" {
		q.Set("cursor", pg.cursor)
	}
	next, err := c.Page(cmd.Context(), path, q, out)
	if err != nil {
		return err
	}
	if err := a.print(out, fn); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(a.errw, "more: %s --cursor %s\n", cmd.CommandPath(), next)
	}
	return nil
}

// operation waits for an operation (unless --async) and prints it or its result.
func (a *app) operation(cmd *cobra.Command, op api.Operation, printResult func(result json.RawMessage) error) error {
	if a.async {
		return a.print(op, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "operation\t%s\nkind\t%s\nstate\t%s\n", op.ID, op.Kind, op.State)
		})
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	final, err := c.WaitOperation(cmd.Context(), op.ID, func(o api.Operation) {
		if a.output == "table" {
			fmt.Fprintf(a.errw, "[%3.0f%%] %s\n", o.Progress, o.Message)
		}
	})
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(final.Result)
	return printResult(raw)
}

// print writes v as JSON, or as a table through fn.
func (a *app) print(v any, fn func(w *tabwriter.Writer)) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fn(w)
	return w.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func esc(s string) string { return client.PathEscape(s) }

// humanBytes formats a byte count with binary units.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
