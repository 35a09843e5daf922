// Package integration holds knib's end-to-end tests: the real knib binary
// (server and CLI) against the real libvirtd and QEMU with the tiny test
// guest and its real qemu-guest-agent. They check data, not only statuses:
// what the guest wrote is what a restore gives back.
//
// They skip when libvirt is unavailable, except under
// KNIB_TEST_REQUIRE_INFRA=1 (CI), where that is a failure.
package integration
