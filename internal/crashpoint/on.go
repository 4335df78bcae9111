//go:build exactly_crashpoints

package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Crash points are compiled in only with the exactly_crashpoints build tag,
// for the crash tests: EXACTLY_CRASH_AT=<point>[:<n>] makes the process
// SIGKILL itself (no cleanup, no deferred calls) the n-th time (default 1)
// it reaches that point.
var (
	crashAt    = os.Getenv("EXACTLY_CRASH_AT")
	crashCount atomic.Int64
)

// Hit SIGKILLs the process if EXACTLY_CRASH_AT names this point and this
// is the n-th time it is reached.
func Hit(name string) {
	point, nth, _ := strings.Cut(crashAt, ":")
	if point != name {
		return
	}
	n, err := strconv.ParseInt(nth, 10, 64)
	if err != nil || n < 1 {
		n = 1
	}
	if crashCount.Add(1) == n {
		fmt.Fprintf(os.Stderr, "exactly: crash point %s reached (%d): SIGKILL\n", name, n)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
