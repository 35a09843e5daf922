package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/client"
)

func settingsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "settings", Short: "Settings (admin)"}
	var q api.SettingQuery
	list := &cobra.Command{
		Use:   "list [--scope global|zone|host|account] [--zone Z|--host H|--account A]",
		Short: "List every setting with its effective value at a scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.Setting
			query := map[string]string{"scope": q.Scope, "zone": q.Zone, "host": q.Host, "account": q.Account}
			if err := a.call(cmd, "GET", "/settings", query, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "KEY\tVALUE\tSOURCE\tDEFAULT\tUNIT")
				for _, s := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Key, s.Value, s.Source, s.Default, s.Unit)
				}
			})
		},
	}
	lf := list.Flags()
	lf.StringVar(&q.Scope, "scope", "", "global, zone, host or account")
	lf.StringVar(&q.Zone, "zone", "", "zone name")
	lf.StringVar(&q.Host, "host", "", "host name")
	lf.StringVar(&q.Account, "account", "", "account name")

	var u api.SettingUpdate
	set := &cobra.Command{
		Use:   "set KEY VALUE [--zone Z|--host H|--account A]",
		Short: "Set a setting globally or at one scope",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			u.Value = args[1]
			var s api.Setting
			if err := a.call(cmd, "PUT", "/settings/"+esc(args[0]), nil, u, &s); err != nil {
				return err
			}
			return a.print(s, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s\t%s\t(%s)\n", s.Key, s.Value, s.Source) })
		},
	}
	sf := set.Flags()
	sf.StringVar(&u.Zone, "zone", "", "zone name")
	sf.StringVar(&u.Host, "host", "", "host name")
	sf.StringVar(&u.Account, "account", "", "account name")

	var r api.SettingQuery
	reset := &cobra.Command{
		Use:   "reset KEY [--zone Z|--host H|--account A]",
		Short: "Remove the value stored at a scope",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var s api.Setting
			query := map[string]string{"zone": r.Zone, "host": r.Host, "account": r.Account}
			if err := a.call(cmd, "DELETE", "/settings/"+esc(args[0]), query, nil, &s); err != nil {
				return err
			}
			return a.print(s, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s\t%s\t(%s)\n", s.Key, s.Value, s.Source) })
		},
	}
	rf := reset.Flags()
	rf.StringVar(&r.Zone, "zone", "", "zone name")
	rf.StringVar(&r.Host, "host", "", "host name")
	rf.StringVar(&r.Account, "account", "", "account name")
	cmd.AddCommand(list, set, reset)
	return cmd
}

func accountCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "account", Short: "Accounts (admin)"}
	table := func(list []api.Account) error {
		return a.print(list, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "ID\tNAME\tCREATED\tMAX VMS\tMAX VCPUS\tMAX MEMORY")
			for _, x := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Name, x.Created.Format("2006-01-02 15:04:05"),
					limitText(x.Limits.VMs, false), limitText(x.Limits.VCPUs, false), limitText(x.Limits.MemoryBytes, true))
			}
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "Create an account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var acc api.Account
			if err := a.call(cmd, "POST", "/accounts", nil, api.AccountCreate{Name: args[0]}, &acc); err != nil {
				return err
			}
			if a.output == "json" {
				return a.print(acc, nil)
			}
			return table([]api.Account{acc})
		},
	}, accountShowCmd(a), accountLimitsCmd(a), accountPasswdCmd(a), &cobra.Command{
		Use:   "list",
		Short: "List accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.Account
			if err := a.call(cmd, "GET", "/accounts", nil, nil, &list); err != nil {
				return err
			}
			return table(list)
		},
	})
	return cmd
}

func tokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "API tokens (admin)"}
	var b api.TokenCreate
	create := &cobra.Command{
		Use:   "create --account A [--role user|admin] [--name N]",
		Short: "Create an API token; the secret is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var t api.Token
			if err := a.call(cmd, "POST", "/tokens", nil, b, &t); err != nil {
				return err
			}
			return a.print(t, func(w *tabwriter.Writer) { fmt.Fprintln(w, t.Token) })
		},
	}
	f := create.Flags()
	f.StringVar(&b.Account, "account", "", "account name or id")
	f.StringVar(&b.Role, "role", "user", "admin or user")
	f.StringVar(&b.Name, "name", "", "label for the token")
	create.MarkFlagRequired("account")
	var account string
	list := &cobra.Command{
		Use:   "list [--account A]",
		Short: "List API tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out []api.TokenInfo
			if err := a.call(cmd, "GET", "/tokens", map[string]string{"account": account}, nil, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tACCOUNT\tROLE\tNAME\tCREATED")
				for _, t := range out {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Account, t.Role, t.Name, t.Created.Format(time.RFC3339))
				}
			})
		},
	}
	list.Flags().StringVar(&account, "account", "", "only this account's tokens")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token: it and the console sessions started with it stop working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.call(cmd, "DELETE", "/tokens/"+esc(args[0]), nil, nil, nil); err != nil {
				return err
			}
			return a.print(map[string]string{"revoked": args[0]}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "revoked\t%s\n", args[0]) })
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func operationCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "operation", Aliases: []string{"op"}, Short: "Long-running operations"}
	table := func(list []api.Operation) error {
		return a.print(list, func(w *tabwriter.Writer) { opTable(w, list) })
	}
	var all bool
	var pg paging
	list := &cobra.Command{
		Use:   "list [--all] [--limit N] [--cursor C]",
		Short: "List unfinished operations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.Operation
			q := map[string]string{}
			if all {
				q["all"] = "true"
			}
			return a.page(cmd, "/operations", q, pg, &list, func(w *tabwriter.Writer) { opTable(w, list) })
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include finished operations")
	pg.flags(list)
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show an operation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var op api.Operation
			if err := a.call(cmd, "GET", "/operations/"+esc(args[0]), nil, nil, &op); err != nil {
				return err
			}
			if a.output == "json" {
				return a.print(op, nil)
			}
			return table([]api.Operation{op})
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func whoamiCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the account and role of the token in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var who map[string]string
			if err := a.call(cmd, "GET", "/whoami", nil, nil, &who); err != nil {
				return err
			}
			return a.print(who, func(w *tabwriter.Writer) { fmt.Fprintf(w, "account\t%s\nrole\t%s\n", who["account"], who["role"]) })
		},
	}
}

func limitText(v int64, bytes bool) string {
	switch {
	case v < 0:
		return "unlimited"
	case bytes:
		return humanBytes(uint64(v))
	}
	return strconv.FormatInt(v, 10)
}

func accountShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show ACCOUNT",
		Short: "Show an account: its resource limits and what its VMs use",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var acc api.Account
			if err := a.call(cmd, "GET", "/accounts/"+esc(args[0]), nil, nil, &acc); err != nil {
				return err
			}
			return printAccount(a, acc)
		},
	}
}

func printAccount(a *app, acc api.Account) error {
	return a.print(acc, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "id\t%s\nname\t%s\ncreated\t%s\n", acc.ID, acc.Name, acc.Created.Format("2006-01-02 15:04:05"))
		fmt.Fprintln(w, "\tLIMIT\tIN USE")
		used := func(v int64, bytes bool) string {
			if acc.Usage == nil {
				return "-"
			}
			if bytes {
				return humanBytes(uint64(v))
			}
			return strconv.FormatInt(v, 10)
		}
		var u api.Usage
		if acc.Usage != nil {
			u = *acc.Usage
		}
		fmt.Fprintf(w, "vms\t%s\t%s\n", limitText(acc.Limits.VMs, false), used(u.VMs, false))
		fmt.Fprintf(w, "vcpus\t%s\t%s\n", limitText(acc.Limits.VCPUs, false), used(u.VCPUs, false))
		fmt.Fprintf(w, "memory\t%s\t%s\n", limitText(acc.Limits.MemoryBytes, true), used(u.MemoryBytes, true))
	})
}

func accountLimitsCmd(a *app) *cobra.Command {
	var vms, vcpus int64
	var memory string
	cmd := &cobra.Command{
		Use:   "limits ACCOUNT [--vms N] [--vcpus N] [--memory SIZE]",
		Short: "Set an account's resource limits (-1: unlimited); validation VMs count against them when enforce.resource.limit.on.backup.validation.vm is true",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body api.LimitsUpdate
			f := cmd.Flags()
			if f.Changed("vms") {
				body.VMs = &vms
			}
			if f.Changed("vcpus") {
				body.VCPUs = &vcpus
			}
			if f.Changed("memory") {
				n := int64(-1)
				if memory != "-1" {
					var err error
					if n, err = parseSize(memory); err != nil {
						return usageError{fmt.Errorf("--memory: %v, or -1", err)}
					}
				}
				body.MemoryBytes = &n
			}
			if body == (api.LimitsUpdate{}) {
				return usageError{errors.New("give at least one of --vms, --vcpus, --memory")}
			}
			var acc api.Account
			if err := a.call(cmd, "PUT", "/accounts/"+esc(args[0])+"/limits", nil, body, &acc); err != nil {
				return err
			}
			return printAccount(a, acc)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&vms, "vms", -1, "number of VMs (-1: unlimited)")
	f.Int64Var(&vcpus, "vcpus", -1, "vCPUs of all VMs (-1: unlimited)")
	f.StringVar(&memory, "memory", "-1", "memory of all VMs, e.g. 8G (-1: unlimited)")
	return cmd
}

func opTable(w *tabwriter.Writer, list []api.Operation) {
	fmt.Fprintln(w, "ID\tKIND\tVM\tSTATE\tPROGRESS\tMESSAGE\tERROR")
	for _, o := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.0f%%\t%s\t%s\n", o.ID, o.Kind, o.VMID, o.State, o.Progress, o.Message, o.Error)
	}
}

// accountPasswdCmd sets an account's console password, read from a file or
// from standard input (never from a flag, which other users could see).
func accountPasswdCmd(a *app) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "passwd NAME [--password-file F]",
		Short: "Set an account's web console password (read from stdin or a file; a user changes their own with KNIB_CURRENT_PASSWORD set)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw []byte
			var err error
			if file != "" {
				raw, err = os.ReadFile(file)
			} else {
				raw, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4096))
			}
			if err != nil {
				return usageError{fmt.Errorf("read the password: %w", err)}
			}
			pw := strings.TrimRight(string(raw), "\r\n")
			if pw == "" {
				return usageError{fmt.Errorf("no password given: pipe it on stdin or name a --password-file")}
			}
			var acc api.Account
			body := api.PasswordUpdate{Password: pw, CurrentPassword: os.Getenv("KNIB_CURRENT_PASSWORD")}
			if err := a.call(cmd, "PUT", "/accounts/"+client.PathEscape(args[0])+"/password", nil, body, &acc); err != nil {
				return err
			}
			if a.output == "json" {
				return a.print(acc, nil)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s set; its console sessions ended\n", acc.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "password-file", "", "file holding the password (trailing newlines are dropped)")
	return cmd
}
