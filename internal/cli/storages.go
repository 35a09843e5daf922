package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
)

func storageCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "storage", Short: "Manage backup storages (admin)"}
	cmd.AddCommand(storageAddCmd(a), storageListCmd(a), storageShowCmd(a),
		storageStateCmd(a, "disable", "Disable a storage: no new chain goes there (its chains continue)"),
		storageStateCmd(a, "enable", "Enable a storage"),
		storageRemoveCmd(a), storageMigrateCmd(a))
	return cmd
}

func storageAddCmd(a *app) *cobra.Command {
	var b api.StorageCreate
	cmd := &cobra.Command{
		Use:   "add --zone Z --path P [--name N] [--tag T]",
		Short: "Add a backup storage: an existing directory at the same absolute path on every host of the zone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var st api.Storage
			if err := a.call(cmd, "POST", "/storages", nil, b, &st); err != nil {
				return err
			}
			return a.print(st, func(w *tabwriter.Writer) { storageTable(w, []api.Storage{st}) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&b.Zone, "zone", "", "zone (name or id)")
	f.StringVar(&b.Path, "path", "", "absolute, clean path of the directory (an agent of the zone checks it)")
	f.StringVar(&b.Name, "name", "", "storage name (default: the last element of the path)")
	f.StringVar(&b.Tag, "tag", "", "storage tag; offerings with --storage-tag T place new chains here")
	cmd.MarkFlagRequired("zone")
	cmd.MarkFlagRequired("path")
	return cmd
}

func storageListCmd(a *app) *cobra.Command {
	var zone string
	cmd := &cobra.Command{
		Use:   "list [--zone Z]",
		Short: "List backup storages with capacity and usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.Storage
			if err := a.call(cmd, "GET", "/storages", map[string]string{"zone": zone}, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) { storageTable(w, list) })
		},
	}
	cmd.Flags().StringVar(&zone, "zone", "", "only this zone's storages")
	return cmd
}

func storageShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show STORAGE",
		Short: "Show a backup storage (name or id)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st api.Storage
			if err := a.call(cmd, "GET", "/storages/"+esc(args[0]), nil, nil, &st); err != nil {
				return err
			}
			return a.print(st, func(w *tabwriter.Writer) { storageTable(w, []api.Storage{st}) })
		},
	}
}

func storageStateCmd(a *app, verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " STORAGE",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st api.Storage
			if err := a.call(cmd, "POST", "/storages/"+esc(args[0])+"/"+verb, nil, nil, &st); err != nil {
				return err
			}
			return a.print(st, func(w *tabwriter.Writer) { storageTable(w, []api.Storage{st}) })
		},
	}
}

func storageRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove STORAGE",
		Short: "Remove a backup storage from the catalogue (refused while it holds live backups; files are left alone)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Status string `json:"status"`
			}
			if err := a.call(cmd, "DELETE", "/storages/"+esc(args[0]), nil, nil, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) { fmt.Fprintf(w, "removed storage %s\n", args[0]) })
		},
	}
}

func storageMigrateCmd(a *app) *cobra.Command {
	var b api.StorageMigrate
	cmd := &cobra.Command{
		Use:   "migrate --from S --to S2 [--vm VM]",
		Short: "Move backups (whole chains) to another storage of the zone; they stay restorable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var op api.Operation
			if err := a.call(cmd, "POST", "/storages/migrate", nil, b, &op); err != nil {
				return err
			}
			return a.operation(cmd, op, func(res json.RawMessage) error {
				var r domain.StorageMigrateResult
				if err := json.Unmarshal(res, &r); err != nil {
					return err
				}
				return a.print(r, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "moved %d backup(s) from %s to %s\n", len(r.Moved), r.From, r.To)
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&b.From, "from", "", "source storage (name or id)")
	f.StringVar(&b.To, "to", "", "target storage (name or id), same zone")
	f.StringVar(&b.VM, "vm", "", "only this VM's backups")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}

func storageTable(w *tabwriter.Writer, list []api.Storage) {
	fmt.Fprintln(w, "NAME\tZONE\tPATH\tTAG\tENABLED\tCAPACITY\tFREE\tUSED\tID")
	for _, st := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Name, st.Zone, st.Path, st.Tag, yesNo(st.Enabled),
			humanBytes(uint64(max(st.Capacity, 0))), humanBytes(uint64(max(st.Free, 0))), humanBytes(uint64(max(st.Used, 0))), st.ID)
	}
}

func zoneCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "zone", Short: "Zones group hosts and backup storages (admin)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List zones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.Zone
			if err := a.call(cmd, "GET", "/zones", nil, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "NAME\tHOSTS\tSTORAGES\tID")
				for _, z := range list {
					fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", z.Name, z.Hosts, z.Storages, z.ID)
				}
			})
		},
	}, &cobra.Command{
		Use:   "create NAME",
		Short: "Create a zone",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var z api.Zone
			if err := a.call(cmd, "POST", "/zones", nil, api.ZoneCreate{Name: args[0]}, &z); err != nil {
				return err
			}
			return a.print(z, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s\t%s\n", z.Name, z.ID) })
		},
	})
	return cmd
}
