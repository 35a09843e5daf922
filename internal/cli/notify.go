package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// Notification types as the API sends them (/api/v1/notify/...).
type notifyTarget struct {
	ID        string   `json:"id,omitempty"`
	Name      string   `json:"name"`
	Kind      string   `json:"kind,omitempty"`
	Webhook   string   `json:"webhook,omitempty"`
	URL       string   `json:"url,omitempty"`
	Secret    string   `json:"secret,omitempty"`
	SMTP      string   `json:"smtp,omitempty"`
	From      string   `json:"from,omitempty"`
	To        []string `json:"to,omitempty"`
	User      string   `json:"user,omitempty"`
	StartTLS  string   `json:"starttls,omitempty"`
	HasSecret bool     `json:"has_secret,omitempty"`
}

type notifyRule struct {
	ID        string   `json:"id,omitempty"`
	Target    string   `json:"target,omitempty"`
	TargetID  string   `json:"target_id,omitempty"`
	Events    []string `json:"events,omitempty"`
	Zone      string   `json:"zone,omitempty"`
	ZoneID    string   `json:"zone_id,omitempty"`
	Account   string   `json:"account,omitempty"`
	AccountID string   `json:"account_id,omitempty"`
	Digest    string   `json:"digest,omitempty"`
}

type notifyDelivery struct {
	ID          string `json:"id"`
	TargetID    string `json:"target_id"`
	Condition   string `json:"condition"`
	Event       string `json:"event"`
	State       string `json:"state"`
	Attempts    int    `json:"attempts"`
	NextAttempt string `json:"next_attempt"`
	LastError   string `json:"last_error"`
	Delivered   string `json:"delivered"`
	Created     string `json:"created"`
}

func notifyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "notify", Short: "Notifications: targets (webhook, e-mail), rules and the delivery log (admin)"}
	target := &cobra.Command{Use: "target", Short: "Manage notification targets"}
	target.AddCommand(notifyTargetAddCmd(a), notifyTargetListCmd(a),
		notifyTargetActCmd(a, "test", "Send a test message to a target now and report the error", "POST", "/test"),
		notifyTargetActCmd(a, "remove", "Remove a target and its rules", "DELETE", ""))
	rule := &cobra.Command{Use: "rule", Short: "Manage notification rules"}
	rule.AddCommand(notifyRuleAddCmd(a), notifyRuleListCmd(a), notifyRuleRemoveCmd(a))
	cmd.AddCommand(target, rule, notifyLogCmd(a))
	return cmd
}

// readSecretFile reads a secret from a file (trailing newline dropped).
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

func notifyTargetAddCmd(a *app) *cobra.Command {
	var b notifyTarget
	var secretFile, passwordFile string
	cmd := &cobra.Command{
		Use:   "add NAME (--webhook URL --secret-file F | --smtp HOST:PORT --from ADDR --to ADDR... [--user U --password-file F] [--starttls required|none])",
		Short: "Add a webhook (JSON signed with HMAC-SHA256) or SMTP target; secrets are read from files and never shown",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b.Name = args[0]
			var err error
			switch {
			case secretFile != "" && passwordFile != "":
				return fmt.Errorf("give --secret-file (webhook) or --password-file (smtp), not both")
			case secretFile != "":
				b.Secret, err = readSecretFile(secretFile)
			case passwordFile != "":
				b.Secret, err = readSecretFile(passwordFile)
			}
			if err != nil {
				return err
			}
			var out notifyTarget
			if err := a.call(cmd, "POST", "/notify/targets", nil, b, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) { notifyTargetTable(w, []notifyTarget{out}) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&b.Webhook, "webhook", "", "webhook URL (http or https)")
	f.StringVar(&secretFile, "secret-file", "", "file holding the webhook's HMAC secret")
	f.StringVar(&b.SMTP, "smtp", "", "SMTP server host:port")
	f.StringVar(&b.From, "from", "", "sender address")
	f.StringSliceVar(&b.To, "to", nil, "recipient addresses")
	f.StringVar(&b.User, "user", "", "SMTP user (AUTH PLAIN)")
	f.StringVar(&passwordFile, "password-file", "", "file holding the SMTP password")
	f.StringVar(&b.StartTLS, "starttls", "", "required (default) or none")
	return cmd
}

func notifyTargetTable(w *tabwriter.Writer, list []notifyTarget) {
	fmt.Fprintln(w, "NAME\tKIND\tWHERE\tTO\tUSER\tSTARTTLS\tID")
	for _, t := range list {
		where := t.URL
		if t.Kind == "smtp" {
			where = t.SMTP
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Kind, where, strings.Join(t.To, ","), t.User, t.StartTLS, t.ID)
	}
}

func notifyTargetListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List notification targets (secrets are never shown)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []notifyTarget
			if err := a.call(cmd, "GET", "/notify/targets", nil, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) { notifyTargetTable(w, list) })
		},
	}
}

func notifyTargetActCmd(a *app, verb, short, method, suffix string) *cobra.Command {
	return &cobra.Command{
		Use: verb + " NAME", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Status string `json:"status"`
			}
			if err := a.call(cmd, method, "/notify/targets/"+esc(args[0])+suffix, nil, nil, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s: %s\n", args[0], out.Status) })
		},
	}
}

func notifyRuleTable(w *tabwriter.Writer, list []notifyRule) {
	fmt.Fprintln(w, "ID\tTARGET\tEVENTS\tZONE\tACCOUNT\tDIGEST")
	for _, r := range list {
		events := strings.Join(r.Events, ",")
		if events == "" {
			events = "all"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.TargetID, events, r.ZoneID, r.AccountID, r.Digest)
	}
}

func notifyRuleAddCmd(a *app) *cobra.Command {
	var b notifyRule
	cmd := &cobra.Command{
		Use:   "add --target T [--event KIND...] [--zone Z] [--account A] [--digest daily]",
		Short: "Send events (all kinds unless --event) of a zone and account (any unless given) to a target",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out notifyRule
			if err := a.call(cmd, "POST", "/notify/rules", nil, b, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) { notifyRuleTable(w, []notifyRule{out}) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&b.Target, "target", "", "target name or id")
	f.StringSliceVar(&b.Events, "event", nil, "event kinds: vm.error, backup.failed, validation.notvalid, compression.failed, job.exhausted, agent.down, storage.low, vm.stale, backup.changed")
	f.StringVar(&b.Zone, "zone", "", "only this zone's events")
	f.StringVar(&b.Account, "account", "", "only this account's events")
	f.StringVar(&b.Digest, "digest", "", "daily: one message a day listing the day's conditions instead of one per event")
	cmd.MarkFlagRequired("target")
	return cmd
}

func notifyRuleListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List notification rules", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []notifyRule
			if err := a.call(cmd, "GET", "/notify/rules", nil, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) { notifyRuleTable(w, list) })
		},
	}
}

func notifyRuleRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "remove ID", Short: "Remove a notification rule", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Status string `json:"status"`
			}
			if err := a.call(cmd, "DELETE", "/notify/rules/"+esc(args[0]), nil, nil, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s: %s\n", args[0], out.Status) })
		},
	}
}

func notifyLogCmd(a *app) *cobra.Command {
	var state string
	var limit int
	cmd := &cobra.Command{
		Use: "log [--state pending|delivered|failed] [--limit N]", Short: "List notification deliveries, newest first, with the last error of each", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []notifyDelivery
			q := map[string]string{"state": state}
			if limit > 0 {
				q["limit"] = strconv.Itoa(limit)
			}
			if err := a.call(cmd, "GET", "/notify/log", q, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "CREATED\tEVENT\tCONDITION\tTARGET\tSTATE\tATTEMPTS\tNEXT/DELIVERED\tLAST ERROR")
				for _, d := range list {
					when := d.NextAttempt
					if d.Delivered != "" {
						when = d.Delivered
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Created, d.Event, d.Condition, d.TargetID, d.State, d.Attempts, when, d.LastError)
				}
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "pending, delivered or failed")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (default 100)")
	return cmd
}
