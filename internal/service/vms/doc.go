// Package vms holds the VM catalogue: listing, assignment to offerings, owners, disks and guest commands.
//
// Vocabulary:
//   - assignment: a VM's offering; only assigned VMs are backed up.
package vms
