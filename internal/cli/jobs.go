package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
)

func jobCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "job", Short: "Background service jobs (admin)"}
	var q api.JobQuery
	var pg paging
	list := &cobra.Command{
		Use:   "list [--id] [--backup] [--host] [--zone] [--type] [--executing] [--scheduled] [--all]",
		Short: "List service jobs (default: not finished; --host implies --executing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			query := map[string]string{"id": q.ID, "backup": q.Backup, "host": q.Host, "zone": q.Zone, "type": q.Type}
			for k, v := range map[string]bool{"executing": q.Executing, "scheduled": q.Scheduled, "all": q.All} {
				if v {
					query[k] = "true"
				}
			}
			var list []api.Job
			return a.page(cmd, "/jobs", query, pg, &list, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tTYPE\tBACKUP\tHOST\tSTATE\tATTEMPTS\tSCHEDULED\tLAST ERROR")
				for _, j := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", j.ID, j.Type, j.BackupID, j.Host, j.State, j.Attempts,
						j.Scheduled.Format("2006-01-02 15:04:05"), j.LastError)
				}
			})
		},
	}
	f := list.Flags()
	f.StringVar(&q.ID, "id", "", "only this job")
	f.StringVar(&q.Backup, "backup", "", "only jobs of this backup")
	f.StringVar(&q.Host, "host", "", "only jobs executing on this host")
	f.StringVar(&q.Zone, "zone", "", "only jobs of this zone")
	f.StringVar(&q.Type, "type", "", "StartCompression, FinalizeCompression, BackupValidation or BackupCopy")
	f.BoolVar(&q.Executing, "executing", false, "only running jobs")
	f.BoolVar(&q.Scheduled, "scheduled", false, "only jobs queued for later")
	f.BoolVar(&q.All, "all", false, "finished jobs too")
	pg.flags(list)
	cmd.AddCommand(list)
	return cmd
}
