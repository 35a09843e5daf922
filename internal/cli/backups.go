package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/fsatomic"
)

func backupCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Take, list and delete backups"}
	var b api.BackupCreate
	create := &cobra.Command{
		Use:   "create VM [--isolated] [--quiesce]",
		Short: "Take a backup (full or incremental by the chain rules); prints the new backup's id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var op api.Operation
			if err := a.call(cmd, "POST", "/vms/"+esc(args[0])+"/backups", nil, b, &op); err != nil {
				return err
			}
			return a.operation(cmd, op, func(res json.RawMessage) error {
				var r domain.BackupCreateResult
				if err := json.Unmarshal(res, &r); err != nil {
					return err
				}
				var bk api.Backup
				if err := a.call(cmd, "GET", "/backups/"+esc(r.ID), nil, nil, &bk); err != nil {
					return err
				}
				return a.print(bk, func(w *tabwriter.Writer) { fmt.Fprintln(w, bk.ID) })
			})
		},
	}
	create.Flags().BoolVar(&b.Isolated, "isolated", false, "full backup outside the chain (the chain is left untouched)")
	create.Flags().BoolVar(&b.Quiesce, "quiesce", false, "freeze the guest's file systems during the snapshot (needs the guest agent)")

	var vm string
	var pg paging
	list := &cobra.Command{
		Use:   "list [--vm VM] [--limit N] [--cursor C]",
		Short: "List backups, oldest first, a page at a time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.Backup
			return a.page(cmd, "/backups", map[string]string{"vm": vm}, pg, &list, func(w *tabwriter.Writer) { backupTable(w, list) })
		},
	}
	list.Flags().StringVar(&vm, "vm", "", "only this VM's backups")
	pg.flags(list)
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one backup with its files and hashes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var bk api.Backup
			if err := a.call(cmd, "GET", "/backups/"+esc(args[0]), nil, nil, &bk); err != nil {
				return err
			}
			return a.print(bk, func(w *tabwriter.Writer) {
				backupTable(w, []api.Backup{bk})
				fmt.Fprintln(w, "\nDISK\tFULL\tSIZE\tPATH\tHASH")
				for _, f := range bk.Files {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", f.Disk, yesNo(f.Full), humanBytes(uint64(f.Size)), f.Path, f.Hash)
				}
				if len(bk.Copies) > 0 {
					fmt.Fprintln(w)
					copyTable(w, bk.Copies)
				}
				if len(bk.ValidationSteps) > 0 {
					fmt.Fprintln(w, "\nVALIDATION STEP\tOUTCOME\tDETAIL")
					for _, st := range bk.ValidationSteps {
						fmt.Fprintf(w, "%s\t%s\t%s\n", st.Step, st.Outcome, st.Detail)
					}
				}
				if bk.Error != "" {
					fmt.Fprintf(w, "\nerror\t%s\n", bk.Error)
				}
			})
		},
	}
	var forced, dryRun bool
	del := &cobra.Command{
		Use:   "delete ID... [--forced] [--dry-run]",
		Short: "Delete backups; one that others depend on is marked Removed until its last dependant goes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dryRun {
				var plan api.DeletePlan
				if err := a.call(cmd, "POST", "/backups/delete/plan", nil, api.BackupDelete{IDs: args}, &plan); err != nil {
					return err
				}
				return a.print(plan, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "VM\tDELETED\tMARKED REMOVED\tCATALOGUE ONLY\tMERGES THE HEAD")
					for _, v := range plan.VMs {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\n", v.VM, strings.Join(v.Deleted, " "), strings.Join(v.MarkRemoved, " "), strings.Join(v.CatalogueOnly, " "), v.MergeHead)
					}
				})
			}
			var op api.Operation
			if err := a.call(cmd, "POST", "/backups/delete", nil, api.BackupDelete{IDs: args, Forced: forced}, &op); err != nil {
				return err
			}
			return a.operation(cmd, op, func(res json.RawMessage) error {
				var r domain.BackupDeleteResult
				if err := json.Unmarshal(res, &r); err != nil {
					return err
				}
				return a.print(r, func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted\t%s\n", strings.Join(r.Deleted, " ")) })
			})
		},
	}
	del.Flags().BoolVar(&forced, "forced", false, "forget backups even when their files cannot be deleted")
	del.Flags().BoolVar(&dryRun, "dry-run", false, "only say what the deletion would do under the chain rules; change nothing")
	var file string
	shot := &cobra.Command{
		Use:   "screenshot BACKUP -o FILE.png",
		Short: "Download the backup's validation screenshot",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageError{fmt.Errorf("-o FILE.png is required")}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			png, err := c.Download(cmd.Context(), "/backups/"+esc(args[0])+"/screenshot")
			if err != nil {
				return err
			}
			return fsatomic.WriteFile(file, png, 0o644)
		},
	}
	shot.Flags().StringVarP(&file, "output", "o", "", "PNG file to write")
	validate := &cobra.Command{
		Use:   "validate BACKUP",
		Short: "Queue a validation of the backup now (a validated backup is re-hashed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var j api.Job
			if err := a.call(cmd, "POST", "/backups/"+esc(args[0])+"/validate", nil, nil, &j); err != nil {
				return err
			}
			return a.print(j, func(w *tabwriter.Writer) { fmt.Fprintf(w, "queued job %s\n", j.ID) })
		},
	}
	cmd.AddCommand(create, list, show, del, shot, validate, backupCopyCmd(a), backupCopiesCmd(a))
	cmd.AddCommand(restoreCmds(a)...)
	cmd.AddCommand(fileCmds(a)...)
	return cmd
}

func chainCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "chain", Short: "Backup chains"}
	cmd.AddCommand(&cobra.Command{
		Use:   "finish VM",
		Short: "End the VM's chain now (merge its deltas; the next backup is full); also recovers a VM in BackupError",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var op api.Operation
			if err := a.call(cmd, "POST", "/vms/"+esc(args[0])+"/chain/finish", nil, nil, &op); err != nil {
				return err
			}
			return a.operation(cmd, op, func(res json.RawMessage) error {
				var r domain.ChainFinishResult
				if err := json.Unmarshal(res, &r); err != nil {
					return err
				}
				return a.print(r, func(w *tabwriter.Writer) { fmt.Fprintf(w, "chain of %s ended\n", r.VM) })
			})
		},
	})
	return cmd
}

func backupTable(w *tabwriter.Writer, list []api.Backup) {
	fmt.Fprintln(w, "ID\tVM\tTYPE\tISOLATED\tPARENT\tSTATUS\tSIZE\tVIRTUAL\tCREATED\tHEAD\tCOPIES")
	for _, b := range list {
		parent := b.ParentID
		if parent == "" {
			parent = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.VMName, b.Type, yesNo(b.Isolated), parent, b.Status,
			humanBytes(uint64(b.Size)), humanBytes(uint64(b.VirtualSize)), b.Created.Format("2006-01-02 15:04:05"), yesNo(b.ChainHead), copiesCell(b.Copies))
	}
}
