package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
)

func offeringCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "offering", Short: "Manage backup offerings (admin)"}
	cmd.AddCommand(offeringCreateCmd(a), offeringListCmd(a), offeringShowCmd(a), offeringDeleteCmd(a))
	return cmd
}

func offeringCreateCmd(a *app) *cobra.Command {
	var b api.OfferingCreate
	var steps, chain string
	cmd := &cobra.Command{
		Use:   "create --name NAME [flags]",
		Short: "Create a backup offering",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("backup-chain-size") {
				n, err := strconv.Atoi(strings.TrimSpace(chain))
				if err != nil {
					return usageError{fmt.Errorf("--backup-chain-size: must be an integer, got %q", chain)}
				}
				b.BackupChainSize = &n
			}
			if steps != "" {
				b.ValidationSteps = strings.Split(steps, ",")
			}
			var o api.Offering
			if err := a.call(cmd, "POST", "/offerings", nil, b, &o); err != nil {
				return err
			}
			return a.print(o, func(w *tabwriter.Writer) { offeringTable(w, []api.Offering{o}) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&b.Name, "name", "", "offering name (unique among offerings not removed)")
	f.StringVar(&b.Description, "description", "", "free text")
	f.BoolVar(&b.Compress, "compress", false, "compress backups in the background")
	f.BoolVar(&b.Validate, "validate", false, "validate backups by booting them")
	f.StringVar(&steps, "validation-steps", "", "comma list of wait_for_boot,screenshot,execute_command (default screenshot)")
	f.BoolVar(&b.AllowQuickRestore, "allow-quick-restore", false, "allow quick restore (boot from the backup, consolidate while running)")
	f.BoolVar(&b.AllowExtractFile, "allow-extract-file", false, "allow extracting files from backups")
	f.StringVar(&chain, "backup-chain-size", "", "backups per chain; overrides setting backup.chain.size (0 = unlimited)")
	f.StringVar(&b.CompressionLibrary, "compression-library", "zstd", "zstd or zlib")
	f.StringVar(&b.StorageTag, "storage-tag", "", "place new chains only on backup storages with this tag")
	cmd.MarkFlagRequired("name")
	return cmd
}

func offeringListCmd(a *app) *cobra.Command {
	var q api.OfferingQuery
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List backup offerings (removed ones with --show-removed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			query := map[string]string{"id": q.ID}
			for k, v := range map[string]bool{"compress": q.Compress, "validate": q.Validate, "allow_quick_restore": q.AllowQuickRestore,
				"allow_extract_file": q.AllowExtractFile, "show_removed": q.ShowRemoved} {
				if v {
					query[k] = "true"
				}
			}
			var list []api.Offering
			if err := a.call(cmd, "GET", "/offerings", query, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) { offeringTable(w, list) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.ID, "id", "", "only this offering")
	f.BoolVar(&q.Compress, "compress", false, "only offerings that compress")
	f.BoolVar(&q.Validate, "validate", false, "only offerings that validate")
	f.BoolVar(&q.AllowQuickRestore, "allow-quick-restore", false, "only offerings that allow quick restore")
	f.BoolVar(&q.AllowExtractFile, "allow-extract-file", false, "only offerings that allow file extraction")
	f.BoolVar(&q.ShowRemoved, "show-removed", false, "include removed offerings")
	return cmd
}

func offeringShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one offering",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var o api.Offering
			if err := a.call(cmd, "GET", "/offerings/"+esc(args[0]), nil, nil, &o); err != nil {
				return err
			}
			return a.print(o, func(w *tabwriter.Writer) { offeringTable(w, []api.Offering{o}) })
		},
	}
}

func offeringDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Remove an offering (refused while VMs are assigned to it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var o api.Offering
			if err := a.call(cmd, "DELETE", "/offerings/"+esc(args[0]), nil, nil, &o); err != nil {
				return err
			}
			return a.print(o, func(w *tabwriter.Writer) { fmt.Fprintf(w, "removed offering %s (%s)\n", o.Name, o.ID) })
		},
	}
}

func offeringTable(w *tabwriter.Writer, list []api.Offering) {
	fmt.Fprintln(w, "ID\tNAME\tCOMPRESS\tVALIDATE\tSTEPS\tQUICK RESTORE\tEXTRACT\tCHAIN\tLIBRARY\tREMOVED")
	for _, o := range list {
		chain := "setting"
		if o.BackupChainSize != nil {
			chain = strconv.Itoa(*o.BackupChainSize)
		}
		removed := "-"
		if o.Removed != nil {
			removed = o.Removed.Format("2006-01-02 15:04")
		}
		steps := strings.Join(o.ValidationSteps, ",")
		if steps == "" {
			steps = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.Name, yesNo(o.Compress), yesNo(o.Validate), steps,
			yesNo(o.AllowQuickRestore), yesNo(o.AllowExtractFile), chain, o.CompressionLibrary, removed)
	}
}
