package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/fsatomic"
	"github.com/knib/knib/internal/store/sqlstore"
)

// dbTarget is the --database / --data-dir pair of the db commands.
type dbTarget struct {
	database, dataDir string
}

func (d *dbTarget) flags(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.StringVar(&d.database, "database", os.Getenv("KNIB_DATABASE"), what+": a postgres:// URL or a SQLite file (env KNIB_DATABASE)")
	f.StringVar(&d.dataDir, "data-dir", dataDir(), what+" when --database is not given: the SQLite knib.db in this directory (env KNIB_DATA_DIR)")
}

// resolve returns the database string: --database, else knib.db in --data-dir.
func (d *dbTarget) resolve(cmd *cobra.Command) (string, error) {
	if cmd.Flags().Changed("database") && cmd.Flags().Changed("data-dir") {
		return "", usageError{fmt.Errorf("give --database or --data-dir, not both")}
	}
	if d.database != "" {
		return d.database, nil
	}
	if d.dataDir == "" {
		return "", usageError{fmt.Errorf("give --database or --data-dir")}
	}
	return filepath.Join(d.dataDir, "knib.db"), nil
}

// dbStatus is what db migrate prints.
type dbStatus struct {
	Engine        string `json:"engine"`
	Database      string `json:"database"`
	SchemaVersion int    `json:"schema_version"`
}

// dbTransfer is what db export (to a file) and db import print.
type dbTransfer struct {
	Engine        string         `json:"engine"`
	Database      string         `json:"database"`
	File          string         `json:"file,omitempty"`
	SchemaVersion int            `json:"schema_version"`
	Rows          map[string]int `json:"rows"`
}

func dbCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Manage the catalogue database: migrate, export, import (run on the server's machine, no server needed)",
	}
	cmd.AddCommand(dbMigrateCmd(a), dbExportCmd(a), dbImportCmd(a))
	return cmd
}

func dbMigrateCmd(a *app) *cobra.Command {
	var t dbTarget
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the catalogue's schema and print its version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			database, err := t.resolve(cmd)
			if err != nil {
				return err
			}
			s, err := sqlstore.Open(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer s.Close()
			v, err := s.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			st := dbStatus{Engine: s.Engine(), Database: sqlstore.Redact(database), SchemaVersion: v}
			return a.print(st, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "engine\t%s\ndatabase\t%s\nschema version\t%d\n", st.Engine, st.Database, st.SchemaVersion)
			})
		},
	}
	t.flags(cmd, "database to migrate")
	return cmd
}

func dbExportCmd(a *app) *cobra.Command {
	var t dbTarget
	var file string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write every table of the catalogue as one JSON dump (to --file, or standard output)",
		Long: "Write every table of the catalogue as one JSON dump, read in one transaction.\n" +
			"The dump holds token hashes and the private key of knib's CA (remote agents trust it):\n" +
			"keep it private (--file writes it with mode 0600; standard output gets a warning).\n" +
			"Nothing is created or migrated in the source database.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			database, err := t.resolve(cmd)
			if err != nil {
				return err
			}
			s, err := sqlstore.OpenExisting(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer s.Close()
			if file == "" || file == "-" {
				fmt.Fprintln(a.errw, "knib: warning: the dump holds token hashes and the CA's private key; keep it private")
				w := bufio.NewWriter(a.out)
				if _, err := s.Export(cmd.Context(), w); err != nil {
					return err
				}
				return w.Flush()
			}
			// Written beside the target and renamed: never a half dump.
			var d sqlstore.DumpSummary
			err = fsatomic.Write(file, 0o600, func(f io.Writer) error {
				w := bufio.NewWriter(f)
				var err error
				if d, err = s.Export(cmd.Context(), w); err != nil {
					return err
				}
				return w.Flush()
			})
			if err != nil {
				return fmt.Errorf("dump file: %w", err)
			}
			out := dbTransfer{Engine: d.Engine, Database: sqlstore.Redact(database), File: file, SchemaVersion: d.SchemaVersion, Rows: d.Rows}
			return a.print(out, func(w *tabwriter.Writer) { printTransfer(w, "exported", out) })
		},
	}
	t.flags(cmd, "database to export")
	cmd.Flags().StringVarP(&file, "file", "f", "", "write the dump to this file (default: standard output)")
	return cmd
}

func dbImportCmd(a *app) *cobra.Command {
	var t dbTarget
	var file string
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Load a JSON dump into a new, empty catalogue (for example PostgreSQL, to leave an all-in-one SQLite)",
		Long: "Load a dump written by db export into an empty database of the same schema version.\n" +
			"The database is migrated first; a non-empty database or a dump of another schema\n" +
			"version is refused. Everything loads in one transaction, or nothing does. The dump\n" +
			"is read as a stream: its size does not bound the memory used.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			database, err := t.resolve(cmd)
			if err != nil {
				return err
			}
			var in io.Reader = os.Stdin
			if file != "" && file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return fmt.Errorf("dump file: %w", err)
				}
				defer f.Close()
				in = f
			}
			s, err := sqlstore.Open(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer s.Close()
			// The dump streams in: a catalogue of a million backups loads in
			// little memory.
			rows, err := s.Import(cmd.Context(), bufio.NewReaderSize(in, 1<<20))
			if err != nil {
				return fmt.Errorf("import refused, nothing changed: %w", err)
			}
			version, err := s.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			out := dbTransfer{Engine: s.Engine(), Database: sqlstore.Redact(database), File: file, SchemaVersion: version, Rows: rows}
			return a.print(out, func(w *tabwriter.Writer) { printTransfer(w, "imported", out) })
		},
	}
	t.flags(cmd, "database to load into")
	cmd.Flags().StringVarP(&file, "file", "f", "", "read the dump from this file (default: standard input)")
	return cmd
}

func printTransfer(w *tabwriter.Writer, verb string, t dbTransfer) {
	fmt.Fprintf(w, "engine\t%s\ndatabase\t%s\nschema version\t%d\n", t.Engine, t.Database, t.SchemaVersion)
	names := make([]string, 0, len(t.Rows))
	total := 0
	for n, c := range t.Rows {
		names = append(names, n)
		total += c
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "%s\t%d rows\n", n, t.Rows[n])
	}
	fmt.Fprintf(w, "%s\t%d rows in %d tables\n", verb, total, len(names))
}
