package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
)

func snapshotCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "Disk-only VM snapshots (external qcow2 overlays)"}
	table := func(list []api.Snapshot) error {
		return a.print(list, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "ID\tNAME\tSTATUS\tCREATED")
			for _, s := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.ID, s.Name, s.Status, s.Created.Format("2006-01-02 15:04:05"))
			}
		})
	}
	one := func(sn api.Snapshot) error {
		if a.output == "json" {
			return a.print(sn, nil)
		}
		return table([]api.Snapshot{sn})
	}
	var name string
	create := &cobra.Command{
		Use:   "create VM [--name N]",
		Short: "Take a snapshot of every disk of the VM",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sn api.Snapshot
			if err := a.call(cmd, "POST", "/vms/"+esc(args[0])+"/snapshots", nil, api.SnapshotCreate{Name: name}, &sn); err != nil {
				return err
			}
			return one(sn)
		},
	}
	create.Flags().StringVar(&name, "name", "", "snapshot name (default: VM name and time)")
	cmd.AddCommand(create, &cobra.Command{
		Use:   "list VM",
		Short: "List the VM's snapshots",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.Snapshot
			if err := a.call(cmd, "GET", "/vms/"+esc(args[0])+"/snapshots", nil, nil, &list); err != nil {
				return err
			}
			return table(list)
		},
	}, &cobra.Command{
		Use:   "revert SNAPSHOT",
		Short: "Revert the (stopped) VM to the snapshot",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var vm api.VM
			if err := a.call(cmd, "POST", "/snapshots/"+esc(args[0])+"/revert", nil, nil, &vm); err != nil {
				return err
			}
			return a.print(vm, func(w *tabwriter.Writer) { vmDetailTable(w, vm) })
		},
	}, &cobra.Command{
		Use:   "delete SNAPSHOT",
		Short: "Delete a snapshot (merged when nothing else needs it, else marked Removed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sn api.Snapshot
			if err := a.call(cmd, "DELETE", "/snapshots/"+esc(args[0]), nil, nil, &sn); err != nil {
				return err
			}
			return one(sn)
		},
	})
	return cmd
}
