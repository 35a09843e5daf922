package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/knib/knib/bench/internal/report"
	"github.com/knib/knib/internal/testbed"
)

// BusyFreeze is the freeze of incremental backups taken while the guest
// writes: a loop in the guest writes its first disk (vda, blank) with
// O_DIRECT, so that requests are in flight when the snapshot drains the
// disks.
type BusyFreeze struct {
	Reps int `json:"reps"`
	// HeldSeconds and FreezeSeconds: medians, as in KnibResult.
	HeldSeconds   float64 `json:"io_held_seconds"`
	FreezeSeconds float64 `json:"freeze_seconds"`
	// MaxHeldSeconds is the longest transaction of the rounds.
	MaxHeldSeconds float64 `json:"max_io_held_seconds"`
	// WrittenMiB is what the guest wrote during the rounds.
	WrittenMiB int64 `json:"written_mib"`
}

// guestWriter is the guest's write loop: 4 MiB of O_DIRECT writes of
// 64 KiB to vda, again and again, each round counted in /tmp/rounds.
const guestWriter = `(i=0; while :; do dd if=/dev/zero of=/dev/vda bs=64k count=64 oflag=direct conv=notrunc 2>/dev/null; i=$((i+1)); echo $i >/tmp/rounds; done) </dev/null >/dev/null 2>&1 & echo $!`

// busyFreeze takes reps incremental backups of vm while its guest writes.
func busyFreeze(ctx context.Context, srv *knibServer, vm *testbed.Domain, reps int) (*BusyFreeze, error) {
	out, code, err := vm.Exec(ctx, "/bin/sh", "-c", guestWriter)
	if err != nil || code != 0 {
		return nil, fmt.Errorf("start the guest's writer: exit %d: %v", code, err)
	}
	pid := strings.TrimSpace(out)
	stopped := false
	stop := func() (int64, error) {
		stopped = true
		if _, code, err := vm.Exec(ctx, "/bin/sh", "-c", "kill "+pid); err != nil || code != 0 {
			return 0, fmt.Errorf("stop the guest's writer %s: exit %d: %v", pid, code, err)
		}
		rounds, _, err := vm.Exec(ctx, "/bin/sh", "-c", "cat /tmp/rounds")
		if err != nil {
			return 0, err
		}
		var n int64
		fmt.Sscan(strings.TrimSpace(rounds), &n)
		return 4 * n, nil
	}
	defer func() {
		if !stopped {
			stop()
		}
	}()
	var held, freeze []float64
	for i := 0; i < reps; i++ {
		// The writes flow before the backup starts.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
		b, err := srv.timedBackup(ctx, vm.Name, "incremental")
		if err != nil {
			return nil, fmt.Errorf("backup while the guest writes: %w", err)
		}
		logf("while the guest writes (%d/%d): knib incremental %.2f s, freeze %.3f s, I/O held %.3f s", i+1, reps, b.Seconds, b.Freeze, b.Held)
		held, freeze = append(held, b.Held), append(freeze, b.Freeze)
	}
	written, err := stop()
	if err != nil {
		return nil, err
	}
	if written == 0 {
		return nil, fmt.Errorf("the guest's writer wrote nothing")
	}
	bf := &BusyFreeze{Reps: reps, HeldSeconds: report.Median(held), FreezeSeconds: report.Median(freeze), WrittenMiB: written}
	for _, h := range held {
		bf.MaxHeldSeconds = max(bf.MaxHeldSeconds, h)
	}
	return bf, nil
}
