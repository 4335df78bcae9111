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

// A hung instance's report shows its last log lines and the goroutines of
// its dump that run the project's code, and only those.
func TestHangReportShowsOwnGoroutines(t *testing.T) {
	t.Parallel()
	f := &fleet{cfg: &Config{}, stats: &stats{}}
	out := `{"level":"INFO","msg":"partitions assigned"}
SIGQUIT: quit
goroutine 1 [chan receive]:
main.main()

goroutine 7 [select]:
github.com/exactly-stream/exactly/mirror.(*Mirror).closeStates(0x1)
	/work/mirror/mirror.go:250 +0x1

goroutine 9 [IO wait]:
internal/poll.runtime_pollWait()
`
	in := &instance{id: "chaos-4"}
	f.follow(in, strings.NewReader(out))
	rep := in.hangReport(100)
	require.Contains(t, rep, `"msg":"partitions assigned"`)
	require.Contains(t, rep, "goroutine 7 [select]:")
	require.Contains(t, rep, "mirror.(*Mirror).closeStates")
	require.NotContains(t, rep, "goroutine 9")
	require.NotContains(t, rep, "goroutine 1 ")
}

// An instance of several loops is that many group members, with the
// transactional ids the processor gives its loops (processor.Loops):
// settling, evicting a dead instance's members and finding its partitions
// count them all.
func TestClientIDsOfLoops(t *testing.T) {
	t.Parallel()
	r := &run{cfg: &Config{Loops: 3}, group: "g"}
	require.Equal(t, []string{"g-chaos-1", "g-chaos-1-loop-1", "g-chaos-1-loop-2"}, r.clientIDs("chaos-1"))
	r.cfg.Loops = 0 // the zero Config: one loop
	require.Equal(t, []string{"g-chaos-1"}, r.clientIDs("chaos-1"))
}
