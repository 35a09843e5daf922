package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
)

// printRestore prints a restore operation's result.
func (a *app) printRestore(res json.RawMessage) error {
	var r map[string]any
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	return a.print(r, func(w *tabwriter.Writer) {
		for _, k := range []string{"vm", "id", "backup", "host", "defined", "started", "quick", "consolidated", "to", "files", "dirs", "links", "bytes", "skipped"} {
			if v, ok := r[k]; ok {
				fmt.Fprintf(w, "%s\t%v\n", k, v)
			}
		}
		if disks, ok := r["disks"].([]any); ok {
			fmt.Fprintln(w, "\nDISK\tPATH\tVERIFIED")
			for _, d := range disks {
				m, _ := d.(map[string]any)
				fmt.Fprintf(w, "%v\t%v\t%v\n", m["target"], m["path"], m["verified"])
			}
		}
	})
}

func restoreCmds(a *app) []*cobra.Command {
	var r api.Restore
	restore := &cobra.Command{
		Use:   "restore BACKUP [--quick-restore] [--host H]",
		Short: "Restore all disks of a backup onto its VM (stopped, or deleted: then defined again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var op api.Operation
			if err := a.call(cmd, "POST", "/backups/"+esc(args[0])+"/restore", nil, r, &op); err != nil {
				return err
			}
			return a.operation(cmd, op, a.printRestore)
		},
	}
	restore.Flags().BoolVar(&r.QuickRestore, "quick-restore", false, "start the VM from the backup at once, consolidate while it runs")
	restore.Flags().StringVar(&r.Host, "host", "", "host to restore onto, in the backup's zone: the VM moves there (admin)")
	restore.Flags().StringVar(&r.From, "from", "", "fetch the backup's chain from this remote first (when the local files are gone)")
	restore.Flags().BoolVar(&r.AcceptDamaged, "accept-damaged", false, "restore even from backup files that no longer match their recorded hashes (the result lists them)")

	var v api.RestoreVolume
	volume := &cobra.Command{
		Use:   "restore-volume BACKUP --disk TARGET --vm VM [--quick-restore] [--host H]",
		Short: "Make a new disk from one disk of a backup and attach it to a VM (running or stopped)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var op api.Operation
			if err := a.call(cmd, "POST", "/backups/"+esc(args[0])+"/restore-volume", nil, v, &op); err != nil {
				return err
			}
			return a.operation(cmd, op, a.printRestore)
		},
	}
	volume.Flags().StringVar(&v.Disk, "disk", "", "disk of the backup (e.g. vdb)")
	volume.Flags().StringVar(&v.VM, "vm", "", "VM to attach the new disk to")
	volume.Flags().BoolVar(&v.QuickRestore, "quick-restore", false, "attach an overlay on the backup file at once, consolidate while the VM runs")
	volume.Flags().StringVar(&v.Host, "host", "", "with --quick-restore, a stopped VM starts on this host of its zone (shared primary storage; admin)")
	volume.Flags().StringVar(&v.From, "from", "", "fetch the backup's chain from this remote first (when the local files are gone)")
	volume.Flags().BoolVar(&v.AcceptDamaged, "accept-damaged", false, "restore even from backup files that no longer match their recorded hashes (the result lists them)")
	volume.MarkFlagRequired("disk")
	volume.MarkFlagRequired("vm")

	var c api.CreateVM
	createVM := &cobra.Command{
		Use:   "create-vm BACKUP --name NAME [--quick-restore] [--start] [--host H]",
		Short: "Define a new VM from a backup; the original VM is untouched",
		Long: "Define a new VM from a backup; the original VM is untouched.\n" +
			"A user's new VM is named ACCOUNT.NAME (the account's namespace), so names never collide with another account's VMs.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var op api.Operation
			if err := a.call(cmd, "POST", "/backups/"+esc(args[0])+"/create-vm", nil, c, &op); err != nil {
				return err
			}
			return a.operation(cmd, op, a.printRestore)
		},
	}
	createVM.Flags().StringVar(&c.Name, "name", "", "name of the new VM")
	createVM.Flags().BoolVar(&c.QuickRestore, "quick-restore", false, "boot from the backup at once, consolidate while running")
	createVM.Flags().BoolVar(&c.Start, "start", false, "start the new VM")
	createVM.Flags().StringVar(&c.Host, "host", "", "host to define the new VM on, in the backup's zone (admin)")
	createVM.Flags().StringVar(&c.From, "from", "", "fetch the backup's chain from this remote first (when the local files are gone)")
	createVM.Flags().BoolVar(&c.AcceptDamaged, "accept-damaged", false, "restore even from backup files that no longer match their recorded hashes (the result lists them)")
	createVM.MarkFlagRequired("name")
	return []*cobra.Command{restore, volume, createVM}
}

func consolidateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "consolidate VM",
		Short: "Resume consolidating a quick-restored VM off the backup storage",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var op api.Operation
			if err := a.call(cmd, "POST", "/vms/"+esc(args[0])+"/consolidate", nil, nil, &op); err != nil {
				return err
			}
			return a.operation(cmd, op, a.printRestore)
		},
	}
}
