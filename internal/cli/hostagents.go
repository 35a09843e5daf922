package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
)

// hostAgentCmds are the host commands of remote agents: join tokens,
// maintenance and revocation.
func hostAgentCmds(a *app) []*cobra.Command {
	tokens := &cobra.Command{Use: "join-token", Short: "One-time tokens that let a new agent join (admin)"}
	var zone, ttl string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a join token; prints JSON with the token (shown only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out api.JoinTokenCreated
			if err := a.call(cmd, "POST", "/join-tokens", nil, api.JoinTokenCreate{Zone: zone, TTL: ttl}, &out); err != nil {
				return err
			}
			return printJSON(a, out)
		},
	}
	create.Flags().StringVar(&zone, "zone", "", "zone of the joining host")
	create.Flags().StringVar(&ttl, "ttl", "1h", "how long the token is valid")
	create.MarkFlagRequired("zone")
	tokens.AddCommand(create, &cobra.Command{
		Use:   "list",
		Short: "List join tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.JoinToken
			if err := a.call(cmd, "GET", "/join-tokens", nil, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tZONE\tSTATE\tEXPIRES\tUSED BY")
				for _, t := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Zone, t.State, t.ExpiresAt.Format("2006-01-02 15:04:05"), t.UsedBy)
				}
			})
		},
	}, &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a join token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t api.JoinToken
			if err := a.call(cmd, "DELETE", "/join-tokens/"+esc(args[0]), nil, nil, &t); err != nil {
				return err
			}
			return a.print(t, func(w *tabwriter.Writer) { fmt.Fprintf(w, "join token\t%s\nstate\t%s\n", t.ID, t.State) })
		},
	})
	action := func(use, short, verb string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " HOST",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var h api.Host
				method, path := "POST", "/hosts/"+esc(args[0])+"/"+verb
				if verb == "" {
					method, path = "GET", "/hosts/"+esc(args[0])
				}
				if err := a.call(cmd, method, path, nil, nil, &h); err != nil {
					return err
				}
				return a.print(h, func(w *tabwriter.Writer) { hostTable(w, h) })
			},
		}
	}
	return []*cobra.Command{tokens,
		action("show", "Show a host with its agent connection", ""),
		action("disable", "Disable a host for maintenance: no new work goes to it", "disable"),
		action("enable", "Enable a host again", "enable"),
		action("revoke", "Revoke a remote host's agent identity (it must join again)", "revoke"),
	}
}

func hostTable(w *tabwriter.Writer, h api.Host) {
	fmt.Fprintf(w, "id\t%s\nname\t%s\nzone\t%s\nuri\t%s\nenabled\t%s\nagent\t%s\n", h.ID, h.Name, h.Zone, h.URI, yesNo(h.Enabled), h.Agent)
	if h.AgentURL != "" {
		fmt.Fprintf(w, "agent url\t%s\n", h.AgentURL)
	}
	fmt.Fprintf(w, "libvirt\t%s\nqemu\t%s\nstorage\t%s free / %s\nlast seen\t%s\n", h.LibvirtVersion, h.HypervisorVersion,
		humanBytes(h.StorageFree), humanBytes(h.StorageCapacity), h.LastSeen.Format("2006-01-02 15:04:05"))
}
