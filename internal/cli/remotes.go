package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/spf13/cobra"
)

func remoteCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "remote", Short: "Offsite copies: S3-compatible remotes, their keys and imports (admin)"}
	key := &cobra.Command{Use: "key", Short: "A remote's sealing key"}
	key.AddCommand(remoteKeyExportCmd(a))
	cmd.AddCommand(remoteAddCmd(a), remoteListCmd(a), remoteShowCmd(a), remoteTestCmd(a), remoteRemoveCmd(a), key, remoteImportCmd(a), copyPolicyCmd(a))
	return cmd
}

func remoteAddCmd(a *app) *cobra.Command {
	var b api.RemoteAdd
	var secretFile, keyFile string
	cmd := &cobra.Command{
		Use:   "add NAME --endpoint URL --bucket B --access-key K --secret-key-file F [--region R] [--lock-days N] [--lock-mode governance|compliance] [--bandwidth BYTES/S] [--key-file F]",
		Short: "Add a remote; with --lock-days its locks are checked for real first (a server that does not enforce them is refused)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b.Name = args[0]
			var err error
			if secretFile == "" {
				return fmt.Errorf("--secret-key-file is required")
			}
			if b.SecretKey, err = readSecretFile(secretFile); err != nil {
				return err
			}
			if keyFile != "" {
				if b.Key, err = readSecretFile(keyFile); err != nil {
					return err
				}
			}
			var out api.Remote
			if err := a.call(cmd, "POST", "/remotes", nil, b, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) { remoteTable(w, []api.Remote{out}) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&b.Endpoint, "endpoint", "", "URL of the S3-compatible server (http:// or https://host:port)")
	f.StringVar(&b.Bucket, "bucket", "", "bucket (with Object Lock enabled for --lock-days)")
	f.StringVar(&b.Region, "region", "", "region (default: the server's)")
	f.StringVar(&b.AccessKey, "access-key", "", "access key id")
	f.StringVar(&secretFile, "secret-key-file", "", "file holding the secret access key")
	f.IntVar(&b.LockDays, "lock-days", 0, "write every object locked for this many days (S3 Object Lock)")
	f.StringVar(&b.LockMode, "lock-mode", "", "governance or compliance (default compliance)")
	f.Int64Var(&b.BandwidthBps, "bandwidth", 0, "bytes per second each transfer may use (0: no limit)")
	f.StringVar(&keyFile, "key-file", "", "file holding an exported remote key (to read copies another installation wrote)")
	return cmd
}

func remoteTable(w *tabwriter.Writer, list []api.Remote) {
	fmt.Fprintln(w, "NAME\tENDPOINT\tBUCKET\tLOCK\tLOCK CHECK\tBANDWIDTH\tID")
	for _, r := range list {
		lock := "-"
		if r.LockDays > 0 {
			lock = fmt.Sprintf("%dd %s", r.LockDays, r.LockMode)
		}
		check := r.LockCheck
		if check == "" {
			check = "-"
		}
		bw := "-"
		if r.BandwidthBps > 0 {
			bw = humanBytes(uint64(r.BandwidthBps)) + "/s"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Endpoint, r.Bucket, lock, check, bw, r.ID)
	}
}

func remoteListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List remotes (without secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.Remote
			if err := a.call(cmd, "GET", "/remotes", nil, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) { remoteTable(w, list) })
		},
	}
}

func remoteShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "show REMOTE", Short: "Show a remote with its copies' count and bytes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r api.Remote
			if err := a.call(cmd, "GET", "/remotes/"+esc(args[0]), nil, nil, &r); err != nil {
				return err
			}
			return a.print(r, func(w *tabwriter.Writer) {
				remoteTable(w, []api.Remote{r})
				fmt.Fprintf(w, "\ncopies:\t%d (%s)\n", r.Copies, humanBytes(uint64(r.CopiedBytes)))
			})
		},
	}
}

func remoteTestCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "test REMOTE",
		Short: "Reach a remote and check its locks for real (a locked canary is written and a delete attempted); exit 1 when unsafe",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t api.RemoteTest
			if err := a.call(cmd, "POST", "/remotes/"+esc(args[0])+"/test", nil, nil, &t); err != nil {
				return err
			}
			if err := a.print(t, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "reachable:\t%s\nobject lock:\t%s\nlock check:\t%s\nsafe:\t%s\n", yesNo(t.Reachable), yesNo(t.LockEnabled), t.LockCheck, yesNo(t.Safe))
			}); err != nil {
				return err
			}
			if !t.Safe {
				return fmt.Errorf("remote %s is unsafe for locked copies: %s", args[0], t.LockCheck)
			}
			return nil
		},
	}
}

func remoteRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "remove REMOTE", Short: "Remove a remote that holds no copies (the bucket is not touched)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, "DELETE", "/remotes/"+esc(args[0]), nil, nil, nil)
		},
	}
}

func remoteKeyExportCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "export REMOTE",
		Short: "Print a remote's key: keep it apart from this installation, without it the copies are unreadable",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var k api.RemoteKey
			if err := a.call(cmd, "POST", "/remotes/"+esc(args[0])+"/key", nil, nil, &k); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+k.Warning)
			fmt.Fprintln(cmd.OutOrStdout(), k.Key)
			return nil
		},
	}
}

func remoteImportCmd(a *app) *cobra.Command {
	var b api.RemoteImport
	cmd := &cobra.Command{
		Use:   "import REMOTE [--host H]",
		Short: "Rebuild the catalogue's backups and copies from the remote's manifests alone (disaster recovery)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.RemoteImported
			if err := a.call(cmd, "POST", "/remotes/"+esc(args[0])+"/import", nil, b, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "manifests:\t%d\nbackups recorded:\t%d\nVMs recorded:\t%d\nbackups known:\t%d\n", out.Manifests, out.Backups, out.VMs, out.Known)
				for _, u := range out.Unreadable {
					fmt.Fprintf(w, "unreadable:\t%s\n", u)
				}
			})
		},
	}
	cmd.Flags().StringVar(&b.Host, "host", "", "host the imported VMs are recorded on (default: the only enabled host)")
	return cmd
}

func copyPolicyCmd(a *app) *cobra.Command {
	var b api.CopyPolicy
	var remove bool
	cmd := &cobra.Command{
		Use:   "policy OFFERING [--to REMOTE --every backup|daily|weekly --keep-days N | --remove]",
		Short: "Show, set or remove an offering's copy policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/offerings/" + esc(args[0]) + "/copy-policy"
			if remove {
				return a.call(cmd, "DELETE", path, nil, nil, nil)
			}
			var out api.CopyPolicy
			method, body := "GET", any(nil)
			if b.Remote != "" {
				method, body = "PUT", b
			}
			if err := a.call(cmd, method, path, nil, body, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "remote:\t%s\nevery:\t%s\nkeep days:\t%d\n", out.Remote, out.Every, out.KeepDays)
			})
		},
	}
	cmd.Flags().StringVar(&b.Remote, "to", "", "remote the offering's backups are copied to")
	cmd.Flags().StringVar(&b.Every, "every", "", "backup (every backup, default), daily or weekly (the last backup of each UTC day or week)")
	cmd.Flags().IntVar(&b.KeepDays, "keep-days", 0, "days a copy stays on the remote (0: until deleted)")
	cmd.Flags().BoolVar(&remove, "remove", false, "remove the policy (copies made stay)")
	return cmd
}

func backupCopyCmd(a *app) *cobra.Command {
	var b api.BackupCopyRequest
	var wait bool
	cmd := &cobra.Command{
		Use:   "copy BACKUP --to REMOTE [--keep-days N] [--wait]",
		Short: "Copy a backup to a remote (a BackupCopy job; its chain's missing copies go first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c api.BackupCopy
			if err := a.call(cmd, "POST", "/backups/"+esc(args[0])+"/copy", nil, b, &c); err != nil {
				return err
			}
			for wait && (c.State == "Queued" || c.State == "Copying") {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(500 * time.Millisecond):
				}
				var list []api.BackupCopy
				if err := a.call(cmd, "GET", "/backups/"+esc(args[0])+"/copies", nil, nil, &list); err != nil {
					return err
				}
				for _, x := range list {
					if x.ID == c.ID {
						c = x
					}
				}
			}
			if err := a.print(c, func(w *tabwriter.Writer) { copyTable(w, []api.BackupCopy{c}) }); err != nil {
				return err
			}
			if wait && c.State != "Copied" {
				return fmt.Errorf("copy %s is %s: %s", c.ID, c.State, c.Error)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&b.Remote, "to", "", "remote")
	cmd.Flags().IntVar(&b.KeepDays, "keep-days", 0, "delete the copy this many days after it was made (0: keep)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the copy is made or has failed")
	return cmd
}

func backupCopiesCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "copies BACKUP",
		Short: "List a backup's offsite copies with their objects",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.BackupCopy
			if err := a.call(cmd, "GET", "/backups/"+esc(args[0])+"/copies", nil, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) {
				copyTable(w, list)
				for _, c := range list {
					fmt.Fprintf(w, "\nCOPY %s\tDISK\tSIZE\tKEY\n", c.ID)
					for _, f := range c.Files {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Path, f.Disk, humanBytes(uint64(f.Size)), f.Key)
					}
				}
			})
		},
	}
}

func copyTable(w *tabwriter.Writer, list []api.BackupCopy) {
	fmt.Fprintln(w, "COPY\tREMOTE\tSTATE\tOBJECTS\tSIZE\tLOCKED UNTIL\tKEEP UNTIL\tERROR")
	for _, c := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", c.ID, c.Remote, c.State, c.Objects, humanBytes(uint64(c.Size)), dateOrDash(c.LockUntil), dateOrDash(c.KeepUntil), c.Error)
	}
}

func dateOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// copiesCell names a backup's finished copies' remotes ("-" when none).
func copiesCell(list []api.BackupCopy) string {
	var names []string
	for _, c := range list {
		if c.State == "Copied" {
			names = append(names, c.Remote)
		} else {
			names = append(names, c.Remote+"("+strings.ToLower(c.State)+")")
		}
	}
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}
