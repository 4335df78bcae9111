package chaos

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
	out, err := exec.Command("go", "build", "-race", "-o", bin, "..").CombinedOutput()
	require.NoError(t, err, "building the exactly binary:\n%s", out)
	return bin
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
// restarts, scaling, zombies and broker faults for 20 s, then the checks.
// Every failure the run injects must be ridden out: no violation, no
// instance stopping on its own.
func TestChaosOnKfake(t *testing.T) {
	bin := buildBinary(t)
	var progress syncBuffer
	cfg := Config{
		Binary: bin, Duration: 20 * time.Second, Seed: time.Now().UnixNano() % 1_000_000,
		Rate: 200, Customers: 50, Instances: 2, MaxInstances: 3, Partitions: 4,
		EventInterval: 1500 * time.Millisecond, StopTimeout: 20 * time.Second, StateDir: t.TempDir(), Out: &progress,
	}
	if os.Getenv("EXACTLY_TEST_LOG") != "" {
		cfg.InstanceLogs = os.Stderr
	}
	t.Logf("seed %d", cfg.Seed)
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
