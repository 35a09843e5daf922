package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
)

// auditCmd is knib audit: the audit log of API calls.
func auditCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The audit log: who changed what through the API, and who was refused"}
	var q api.AuditQuery
	var pg paging
	list := &cobra.Command{
		Use:   "list [--account A] [--since T] [--action X]",
		Short: "List audit lines, newest first (admins: every account; users: their own)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if q.Since != "" {
				if _, err := time.Parse(time.RFC3339Nano, q.Since); err != nil {
					return fmt.Errorf("--since: want a time in RFC 3339 form, e.g. 2026-12-04T10:00:00Z, got %q", q.Since)
				}
			}
			var list []api.AuditLine
			return a.page(cmd, "/audit", map[string]string{"account": q.Account, "since": q.Since, "action": q.Action}, pg, &list, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "TIME\tACCOUNT\tTOKEN\tSOURCE\tACTION\tOBJECT\tSTATUS\tOPERATION\tERROR")
				for _, l := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", l.Time.Format("2006-01-02 15:04:05"), l.Account, l.TokenID, l.Source,
						l.Action, l.Object, l.Status, l.OperationID, l.Error)
				}
			})
		},
	}
	f := list.Flags()
	f.StringVar(&q.Account, "account", "", "only this account's lines (id or name)")
	f.StringVar(&q.Since, "since", "", "only lines at or after this time (RFC 3339)")
	f.StringVar(&q.Action, "action", "", `only this action, e.g. "POST /backups/{id}/restore"`)
	pg.flags(list)
	cmd.AddCommand(list)
	return cmd
}
