// Package crashpoint lets tests kill the process at a named step, to prove
// that every interruption is recovered. A crash point is a name such as
// "backup.after-snapshot"; when the environment variable KNIB_CRASH_AT holds
// that name, Hit kills the process with SIGKILL on the spot: no deferred
// function runs and no cleanup happens, exactly like a power cut of the
// process. Without the variable, Hit does nothing.
package crashpoint

import (
	"fmt"
	"os"
	"syscall"
)

// Env is the variable naming the crash point to trigger.
const Env = "KNIB_CRASH_AT"

// Hit kills the process if name is the configured crash point.
func Hit(name string) {
	if os.Getenv(Env) != name {
		return
	}
	fmt.Fprintf(os.Stderr, "knib: crash point %s reached: killing the process\n", name)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught; wait for it to land
}
