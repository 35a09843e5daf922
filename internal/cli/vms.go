package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
)

func hostCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "KVM hosts (admin)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List hosts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.Host
			if err := a.call(cmd, "GET", "/hosts", nil, nil, &list); err != nil {
				return err
			}
			return a.print(list, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tNAME\tZONE\tURI\tLIBVIRT\tQEMU\tSTORAGE FREE/SIZE\tENABLED\tAGENT\tLAST SEEN")
				for _, h := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s / %s\t%s\t%s\t%s\n", h.ID, h.Name, h.Zone, h.URI, h.LibvirtVersion, h.HypervisorVersion,
						humanBytes(h.StorageFree), humanBytes(h.StorageCapacity), yesNo(h.Enabled), h.Agent, h.LastSeen.Format("2006-01-02 15:04:05"))
				}
			})
		},
	}, &cobra.Command{
		Use:   "refresh",
		Short: "Re-read every host's domains now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var op api.Operation
			if err := a.call(cmd, "POST", "/inventory/refresh", nil, nil, &op); err != nil {
				return err
			}
			return a.operation(cmd, op, func(res json.RawMessage) error {
				var r domain.InventoryRefreshResult
				if err := json.Unmarshal(res, &r); err != nil {
					return err
				}
				return a.print(r, func(w *tabwriter.Writer) { fmt.Fprintf(w, "hosts\t%d\nvms\t%d\n", r.Hosts, r.VMs) })
			})
		},
	})
	cmd.AddCommand(hostAgentCmds(a)...) // remote agents (hostagents.go)
	return cmd
}

func vmCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "vm", Short: "Virtual machines (by name or uuid)"}
	var host string
	var pg paging
	list := &cobra.Command{
		Use:   "list [--host HOST] [--limit N] [--cursor C]",
		Short: "List VMs by name, a page at a time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.VM
			return a.page(cmd, "/vms", map[string]string{"host": host}, pg, &list, func(w *tabwriter.Writer) { vmTable(w, list) })
		},
	}
	list.Flags().StringVar(&host, "host", "", "only VMs on this host (admin)")
	pg.flags(list)
	show := &cobra.Command{
		Use:   "show VM",
		Short: "Show a VM with its disks and backing chains",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var vm api.VM
			if err := a.call(cmd, "GET", "/vms/"+esc(args[0]), nil, nil, &vm); err != nil {
				return err
			}
			return a.print(vm, func(w *tabwriter.Writer) { vmDetailTable(w, vm) })
		},
	}
	var offering string
	assign := &cobra.Command{
		Use:   "assign VM --offering ID",
		Short: "Assign a VM to a backup offering",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var vm api.VM
			if err := a.call(cmd, "POST", "/vms/"+esc(args[0])+"/assign", nil, api.VMAssign{OfferingID: offering}, &vm); err != nil {
				return err
			}
			return a.print(vm, func(w *tabwriter.Writer) { vmTable(w, []api.VM{vm}) })
		},
	}
	assign.Flags().StringVar(&offering, "offering", "", "offering id")
	assign.MarkFlagRequired("offering")
	unassign := &cobra.Command{
		Use:   "unassign VM",
		Short: "Remove a VM from its backup offering",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var vm api.VM
			if err := a.call(cmd, "POST", "/vms/"+esc(args[0])+"/unassign", nil, nil, &vm); err != nil {
				return err
			}
			return a.print(vm, func(w *tabwriter.Writer) { vmTable(w, []api.VM{vm}) })
		},
	}
	var account string
	owner := &cobra.Command{
		Use:   "set-owner VM --account ACCOUNT",
		Short: "Give a VM to an account (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var vm api.VM
			if err := a.call(cmd, "PUT", "/vms/"+esc(args[0])+"/owner", nil, api.VMOwner{Account: account}, &vm); err != nil {
				return err
			}
			return a.print(vm, func(w *tabwriter.Writer) { vmTable(w, []api.VM{vm}) })
		},
	}
	owner.Flags().StringVar(&account, "account", "", "account name or id")
	owner.MarkFlagRequired("account")
	var timeout int
	exec := &cobra.Command{
		Use:   "exec VM -- PROGRAM [ARG...]",
		Short: "Run a program in the guest through its guest agent (admin)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res api.GuestExecResult
			body := api.GuestExec{Path: args[1], Args: args[2:], TimeoutSec: timeout}
			if err := a.call(cmd, "POST", "/vms/"+esc(args[0])+"/guest-exec", nil, body, &res); err != nil {
				return err
			}
			if a.output == "json" {
				return a.print(res, nil)
			}
			fmt.Fprint(a.out, res.Stdout)
			fmt.Fprint(a.errw, res.Stderr)
			if res.ExitCode != 0 {
				return fmt.Errorf("guest program exited with code %d", res.ExitCode)
			}
			return nil
		},
	}
	exec.Flags().IntVar(&timeout, "timeout", 30, "seconds to wait for the program")
	var size, target string
	attachDisk := &cobra.Command{
		Use:   "attach-disk VM --size S [--target vdX]",
		Short: "Create an empty qcow2 disk and attach it (the next backup copies it full)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseSize(size)
			if err != nil {
				return usageError{fmt.Errorf("--size %q: %v", size, err)}
			}
			var vm api.VM
			if err := a.call(cmd, "POST", "/vms/"+esc(args[0])+"/disks", nil, api.AttachDisk{Size: n, Target: target}, &vm); err != nil {
				return err
			}
			return a.print(vm, func(w *tabwriter.Writer) { vmDetailTable(w, vm) })
		},
	}
	attachDisk.Flags().StringVar(&size, "size", "", "disk size, e.g. 1G")
	attachDisk.Flags().StringVar(&target, "target", "", "device name (default: the first free vdX)")
	attachDisk.MarkFlagRequired("size")
	detachDisk := &cobra.Command{
		Use:   "detach-disk VM TARGET",
		Short: "Detach a disk; its backup delta is merged first and its file stays",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var vm api.VM
			if err := a.call(cmd, "DELETE", "/vms/"+esc(args[0])+"/disks/"+esc(args[1]), nil, nil, &vm); err != nil {
				return err
			}
			return a.print(vm, func(w *tabwriter.Writer) { vmDetailTable(w, vm) })
		},
	}
	cmd.AddCommand(list, show, assign, unassign, owner, exec, vmDetailCmd(a), consolidateCmd(a), attachDisk, detachDisk)
	return cmd
}

func vmTable(w *tabwriter.Writer, list []api.VM) {
	fmt.Fprintln(w, "ID\tNAME\tHOST\tSTATE\tACCOUNT\tOFFERING\tDISKS")
	for _, v := range list {
		var disks []string
		for _, d := range v.Disks {
			disks = append(disks, d.Target)
		}
		off := v.Offering
		if off == "" {
			off = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.Host, v.State, v.Account, off, strings.Join(disks, ","))
	}
}

func vmDetailTable(w *tabwriter.Writer, v api.VM) {
	off := v.Offering
	if off == "" {
		off = "-"
	} else {
		off += " (" + v.OfferingID + ")"
	}
	fmt.Fprintf(w, "id\t%s\nname\t%s\nhost\t%s\nstate\t%s\naccount\t%s\noffering\t%s\n", v.ID, v.Name, v.Host, v.State, v.Account, off)
	for _, kv := range [][2]string{{"chain head", v.ChainHead}, {"busy with", v.Busy}, {"needs attention", v.LastError}} {
		if kv[1] != "" {
			fmt.Fprintf(w, "%s\t%s\n", kv[0], kv[1])
		}
	}
	fmt.Fprintln(w, "\nDISK\tDEVICE\tFORMAT\tSIZE\tSOURCE\tBACKING CHAIN")
	for _, d := range v.Disks {
		var chain []string
		for _, l := range d.BackingChain {
			chain = append(chain, l.Path+" ("+l.Format+")")
		}
		c := strings.Join(chain, " <- ")
		if c == "" {
			c = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Target, d.Device, d.Format, humanBytes(uint64(d.VirtualSize)), d.Source, c)
	}
}

func vmDetailCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "detail", Short: "Per-VM settings (backupValidation*)"}
	printDetails := func(list []api.VMDetail) error {
		return a.print(list, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "KEY\tVALUE\tREAD-ONLY FOR USERS")
			for _, d := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\n", d.Key, d.Value, yesNo(d.ReadOnlyForUsers))
			}
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list VM",
		Short: "List a VM's details",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.VMDetail
			if err := a.call(cmd, "GET", "/vms/"+esc(args[0])+"/details", nil, nil, &list); err != nil {
				return err
			}
			return printDetails(list)
		},
	}, &cobra.Command{
		Use:   "set VM KEY VALUE",
		Short: "Set a VM detail",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.VMDetail
			if err := a.call(cmd, "PUT", "/vms/"+esc(args[0])+"/details/"+esc(args[1]), nil, api.VMDetailUpdate{Value: args[2]}, &list); err != nil {
				return err
			}
			return printDetails(list)
		},
	}, &cobra.Command{
		Use:   "delete VM KEY",
		Short: "Remove a VM detail",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []api.VMDetail
			if err := a.call(cmd, "DELETE", "/vms/"+esc(args[0])+"/details/"+esc(args[1]), nil, nil, &list); err != nil {
				return err
			}
			return printDetails(list)
		},
	})
	return cmd
}
