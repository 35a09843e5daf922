package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/testbed"
)

// devCmd holds developer helpers: the tiny test guest as a demo VM.
func devCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "dev", Short: "Developer helpers (test guest VMs for demos and tests)", Hidden: false}
	var disks []string
	var start bool
	create := &cobra.Command{
		Use:   "vm-create NAME [--disk 64M]... [--start]",
		Short: "Define a tiny test VM (busybox + qemu-ga, TCG) with qcow2 disks; replaces one of the same name",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sizes []int64
			for _, d := range disks {
				n, err := parseSize(d)
				if err != nil {
					return usageError{fmt.Errorf("--disk %q: %v", d, err)}
				}
				sizes = append(sizes, n)
			}
			l, err := testbed.Dial()
			if err != nil {
				return err
			}
			defer l.Disconnect()
			d, err := testbed.CreateDomain(cmd.Context(), l, testbed.DomainOptions{Name: args[0], DiskSizes: sizes, Start: start})
			if err != nil {
				return err
			}
			return a.print(map[string]any{"name": d.Name, "uuid": d.UUID, "disks": d.Disks}, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "name\t%s\nuuid\t%s\ndisks\t%s\n", d.Name, d.UUID, strings.Join(d.Disks, " "))
			})
		},
	}
	create.Flags().StringArrayVar(&disks, "disk", nil, "disk size (K, M, G suffixes); repeat for more disks (default one 64M disk)")
	create.Flags().BoolVar(&start, "start", false, "start the VM and wait for its guest agent")
	del := &cobra.Command{
		Use:   "vm-delete NAME",
		Short: "Destroy and undefine a test VM and delete its disks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := testbed.Dial()
			if err != nil {
				return err
			}
			defer l.Disconnect()
			return testbed.RemoveDomain(l, args[0])
		},
	}
	cmd.AddCommand(create, del)
	return cmd
}

// parseSize reads sizes like 64M, 2G, 512K or plain bytes.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive size such as 64M")
	}
	return n * mult, nil
}
