package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// buildBinary builds the exactly command with the race detector, for the
// instances a chaos run starts.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "exactly")
	out, err := exec.Command("go", "build", "-race", "-o", bin, "github.com/exactly-stream/exactly/cmd/exactly").CombinedOutput()
	require.NoError(t, err, "building the exactly binary:\n%s", out)
	return bin
}

// chaosSeed is the seed of a soak: EXACTLY_CHAOS_SEED when set, to replay
// a run's choices (timing still differs from run to run), else drawn from
// the clock. It is logged either way.
func chaosSeed(t *testing.T) int64 {
	t.Helper()
	seed := time.Now().UnixNano() % 1_000_000
	if s := os.Getenv("EXACTLY_CHAOS_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseInt(s, 10, 64)
		require.NoError(t, err, "EXACTLY_CHAOS_SEED")
	}
	t.Logf("seed %d (replay with EXACTLY_CHAOS_SEED=%d)", seed, seed)
	return seed
}

// syncBuffer is a bytes.Buffer safe for the log readers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestChaosOnKfake runs a short chaos soak on the embedded cluster: kills,
// restarts, scaling, zombies and broker faults for 20 s, then the checks;
// once with instances of one transaction loop, once of two (each instance
// two group members on one state directory). Every failure the run
// injects must be ridden out: no violation, no instance stopping on its
// own. Idle phases and operator resets are off: they take longer than
// this run, and `make chaos` runs them.
func TestChaosOnKfake(t *testing.T) {
	bin := buildBinary(t)
	for _, loops := range []int{1, 2} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			var progress syncBuffer
			cfg := Config{
				Binary: bin, Duration: 20 * time.Second, Seed: chaosSeed(t),
				Rate: 200, Customers: 50, Instances: 2, MaxInstances: 3, Partitions: 4, Loops: loops,
				EventInterval: 1500 * time.Millisecond, StopTimeout: 20 * time.Second, StateDir: t.TempDir(), Out: &progress,
				IdleEvery: -1, ResetEvery: -1,
			}
			if os.Getenv("EXACTLY_TEST_LOG") != "" {
				cfg.InstanceLogs = os.Stderr
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			rep, err := Run(ctx, cfg)
			require.NoError(t, err, progress.String())
			t.Logf("\n%s%s", progress.String(), rep)
			require.True(t, rep.OK(), rep.String())
			require.Positive(t, rep.Produced.Produced)
			require.Equal(t, rep.Produced.Valid, rep.Verify.Events)
			require.Positive(t, rep.Killed+rep.Stopped+rep.Paused+rep.ScaledUp+rep.ScaledDown+len(rep.Faults), "no failure was injected")
			require.Contains(t, rep.String(), "PASS: exactly once under chaos")
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no binary", Config{}, "no binary"},
		{"instances above max", Config{Binary: "x", Instances: 6, MaxInstances: 5}, "outside"},
		{"min above max", Config{Binary: "x", MinInstances: 4, MaxInstances: 2, Instances: 3}, "min instances"},
		{"kafka dir without brokers", Config{Binary: "x", KafkaDir: "/tmp/k"}, "needs the cluster's brokers"},
		{"negative idle time", Config{Binary: "x", IdleFor: -time.Second}, "must not be negative"},
		{"idle phases without room to scale", Config{Binary: "x", Instances: 1, MaxInstances: 1}, "want max instances >= 2"},
		{"unknown mode", Config{Binary: "x", Mode: "mirrors"}, `mode "mirrors"`},
		{"mirror with a source only", Config{Binary: "x", Mode: ModeMirror, Brokers: []string{"s:9092"}}, "needs both the source and the target"},
		{"target brokers without the mirror", Config{Binary: "x", TargetBrokers: []string{"t:9092"}}, "mirror mode only"},
		{"loops out of range", Config{Binary: "x", Loops: 65}, "loops 65"},
		{"mirror with loops", Config{Binary: "x", Mode: ModeMirror, Loops: 2}, "not for the mirror"},
		{"mirror with broker kills", Config{Binary: "x", Mode: ModeMirror, Brokers: []string{"s"}, TargetBrokers: []string{"t"}, KafkaDir: "/tmp/k"}, "pipeline mode only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.cfg)
			require.ErrorIs(t, err, ErrConfig)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestShortCause(t *testing.T) {
	for in, want := range map[any]string{
		nil:     "rebalance",
		"<nil>": "rebalance",
		"ending transaction: INVALID_TXN_STATE: The producer attempted a transactional operation in an invalid state.": "INVALID_TXN_STATE",
		"processor: transaction aborted by the cluster":                                                                "transaction aborted by the cluster",
		"flushing transaction: context deadline exceeded":                                                              "context deadline exceeded",
		"records have timed out before they were able to be produced":                                                  "records have timed out before they were able to be produced",
	} {
		require.Equal(t, want, shortCause(in), "%v", in)
	}
	require.True(t, strings.HasSuffix(shortCause(strings.Repeat("x", 100)), "..."))
}

// TestPhaseSchedule: each kind is first due half its interval in, then
// every interval; when both are due the one due first runs; a negative
// interval disables its kind.
func TestPhaseSchedule(t *testing.T) {
	begin := time.Unix(1000, 0)
	for _, tc := range []struct {
		name              string
		idleEvery, resets time.Duration
		wantIdle, wantRst time.Duration // first due, after begin; -1: never
	}{
		{"defaults", 70 * time.Second, 50 * time.Second, 35 * time.Second, 25 * time.Second},
		{"idle off", -1, 50 * time.Second, -1, 25 * time.Second},
		{"reset off", 70 * time.Second, -1, 35 * time.Second, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &run{cfg: &Config{IdleEvery: tc.idleEvery, ResetEvery: tc.resets}}
			r.schedulePhases(begin)
			for _, c := range []struct {
				got  time.Time
				want time.Duration
			}{{r.nextIdle, tc.wantIdle}, {r.nextReset, tc.wantRst}} {
				if c.want < 0 {
					require.True(t, c.got.IsZero())
				} else {
					require.Equal(t, begin.Add(c.want), c.got)
				}
			}
		})
	}
}

func TestReportPhases(t *testing.T) {
	r := &Report{Verify: nil, Phases: []Phase{
		{Kind: PhaseIdle, At: 35 * time.Second, Took: 40 * time.Second, ScaleUps: 5, ScaleDowns: 7, Idle: []string{"chaos-1"}, Trickle: 12},
		{Kind: PhaseReset, At: 80 * time.Second, Took: 20 * time.Second, Stopped: 3, ResetBy: "chaos-2", Restarted: 2, Offsets: 9000, Pushed: 4, Push: 700, Unsettled: 1},
		{Kind: PhaseIdle, ScaleUps: 1, ScaleDowns: 2, Trickle: 3},
	}}
	require.Equal(t, IdleTotals{Phases: 2, ScaleUps: 6, ScaleDowns: 9, Orders: 15}, r.Idle())
	require.Equal(t, 1, r.Resets())
	out := r.String()
	require.Contains(t, out, "idle phases: 2 (6 scale-ups, 9 scale-downs while production stopped; 15 orders to the newcomers); operator resets: 1")
	require.Contains(t, out, "idle at 35s, took 40s: chaos-1 kept idle; 5 scale-ups, 7 scale-downs; 12 orders to the newcomers' partitions")
	require.Contains(t, out, "reset at 1m20s, took 20s: 3 instances stopped, chaos-2 reset from committed offsets summing 9000, 700 orders to partition 4 past the old checkpoints, 2 restarted on their old state dirs; 1 waits timed out")
}
