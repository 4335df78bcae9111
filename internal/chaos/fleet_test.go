package chaos

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A goroutine dump whose main goroutine sits in the race detector's exit
// marks the instance as exiting, not hung in its own code; any other dump
// does not.
func TestFollowSeesRaceExit(t *testing.T) {
	t.Parallel()
	f := &fleet{cfg: &Config{}, stats: &stats{}}
	dump := "SIGQUIT: quit\ngoroutine 1 gp=0xc0000081e0 m=7 [syscall]:\nruntime.racefini()\n\t/usr/local/go/src/runtime/race.go:507 +0x1b\nos.Exit(0x0)\n"
	in := &instance{id: "chaos-1"}
	f.follow(in, strings.NewReader(dump))
	require.True(t, in.raceExit)

	hung := "SIGQUIT: quit\ngoroutine 1 [chan receive]:\ngithub.com/twmb/franz-go/pkg/kgo.(*Client).LeaveGroupContext()\n"
	in = &instance{id: "chaos-2"}
	f.follow(in, strings.NewReader(hung))
	require.False(t, in.raceExit)
}
