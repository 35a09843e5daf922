package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
)

func scheduleCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "schedule", Short: "Backup schedules"}
	table := func(list []api.Schedule) error {
		return a.print(list, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "ID\tVM\tINTERVAL\tAT\tTIMEZONE\tMAX BACKUPS\tISOLATED\tNEXT RUN")
			for _, s := range list {
				tz := s.Timezone
				if tz == "" {
					tz = "UTC"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.VMID, s.Interval, s.At, tz, s.MaxBackups, yesNo(s.Isolated),
					s.NextRun.Format("2006-01-02 15:04"))
			}
		})
	}
	one := func(sc api.Schedule) error {
		if a.output == "json" {
			return a.print(sc, nil)
		}
		return table([]api.Schedule{sc})
	}
	flags := func(c *cobra.Command, b *api.ScheduleSpec) {
		f := c.Flags()
		f.StringVar(&b.Interval, "interval", "", "hourly, daily, weekly or monthly")
		f.StringVar(&b.At, "at", "", `when: "MM" hourly, "HH:MM" daily, "DAY HH:MM" weekly, "D HH:MM" monthly`)
		f.StringVar(&b.Timezone, "timezone", "", "IANA time zone (default UTC)")
		f.IntVar(&b.MaxBackups, "max-backups", 0, "keep at most this many backups of the schedule (0: all)")
		f.BoolVar(&b.Isolated, "isolated", false, "isolated backups (full, outside the chain)")
		c.MarkFlagRequired("interval")
		c.MarkFlagRequired("at")
	}
	var cb, ub api.ScheduleSpec
	create := &cobra.Command{
		Use:   "create VM --interval hourly|daily|weekly|monthly --at SPEC [--timezone TZ] [--max-backups N] [--isolated]",
		Short: "Add a backup schedule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sc api.Schedule
			if err := a.call(cmd, "POST", "/vms/"+esc(args[0])+"/schedules", nil, cb, &sc); err != nil {
				return err
			}
			return one(sc)
		},
	}
	flags(create, &cb)
	update := &cobra.Command{
		Use:   "update ID --interval ... --at ... [--timezone TZ] [--max-backups N] [--isolated]",
		Short: "Change a backup schedule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sc api.Schedule
			if err := a.call(cmd, "PUT", "/schedules/"+esc(args[0]), nil, ub, &sc); err != nil {
				return err
			}
			return one(sc)
		},
	}
	flags(update, &ub)
	cmd.AddCommand(create, update, &cobra.Command{
		Use:   "list VM",
		Short: "List a VM's schedules",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.Schedule
			if err := a.call(cmd, "GET", "/vms/"+esc(args[0])+"/schedules", nil, nil, &list); err != nil {
				return err
			}
			return table(list)
		},
	}, &cobra.Command{
		Use:   "delete ID",
		Short: "Remove a schedule (its backups stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r map[string]string
			if err := a.call(cmd, "DELETE", "/schedules/"+esc(args[0]), nil, nil, &r); err != nil {
				return err
			}
			return a.print(r, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted schedule %s\n", args[0]) })
		},
	})
	return cmd
}
