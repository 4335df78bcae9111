package chaos

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/revenue"
)

// TestChaosRevenueOnKfake runs a short revenue soak: kills, restarts,
// freezes, scaling and broker faults for 20 s with an idle phase, then
// the drain, the wait for the wall clock to close the last minute, and
// revenue.Check. It takes about 1.5 to 2 minutes, most of it that wait.
func TestChaosRevenueOnKfake(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "revenue")
	out, err := exec.Command("go", "build", "-race", "-o", bin, "github.com/exactly-stream/exactly/examples/revenue/cmd/revenue").CombinedOutput()
	require.NoError(t, err, "building the revenue binary:\n%s", out)
	var progress syncBuffer
	cfg := Config{
		Mode: ModeRevenue, Binary: bin, Duration: 20 * time.Second, Seed: chaosSeed(t),
		Rate: 100, Partitions: 3, EventInterval: 1500 * time.Millisecond, IdleEvery: 12 * time.Second, IdleFor: 4 * time.Second,
		StopTimeout: 45 * time.Second, Out: &progress,
	}
	if os.Getenv("EXACTLY_TEST_LOG") != "" {
		cfg.InstanceLogs = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	require.NoError(t, err, progress.String())
	t.Logf("\n%s%s", progress.String(), rep)
	v := rep.Revenue
	require.NotNil(t, v)
	require.True(t, v.Checked)
	require.Empty(t, v.Violations, rep.String())
	require.Empty(t, rep.UnexpectedExits, rep.String())
	require.Positive(t, v.Sales)
	require.Positive(t, v.Totals)
	require.Positive(t, v.DeadLetters, "no invalid sale was dead-lettered")
	require.NotEmpty(t, rep.Phases, "no idle phase")
	require.Positive(t, rep.Killed+rep.Stopped+rep.Paused+rep.ScaledUp+rep.ScaledDown+len(rep.Faults), "no failure was injected")
}

// TestRevenueCheckFindsPlantedViolation plants a minute total emitted
// twice and a lost sale in a cluster's committed output, with no
// instance, and requires the revenue mode's check to report both.
func TestRevenueCheckFindsPlantedViolation(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, revenue.TopicRevenue, revenue.TopicDeadLetter))
	require.NoError(t, err)
	defer c.Close()
	r := &run{cfg: &Config{Out: os.Stderr}, st: &stats{}, brokers: c.ListenAddrs()}
	r.revenueTopics()
	cl, err := r.client()
	require.NoError(t, err)
	defer cl.Close()
	minute := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	sale := func(p string) revenue.Sale {
		return revenue.Sale{Product: p, AmountCents: 5, Time: minute.Add(time.Second)}
	}
	r.rev.sales = []revenue.Sale{sale("apple"), sale("pear")}
	total, err := json.Marshal(revenue.Revenue{Product: "apple", Minute: minute, RevenueCents: 5, Sales: 1})
	require.NoError(t, err)
	rec := func() *kgo.Record { return &kgo.Record{Topic: revenue.TopicRevenue, Value: total} }
	require.NoError(t, cl.ProduceSync(context.Background(), rec(), rec()).FirstErr())

	rep, err := r.revenueCheck(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, rep.Violations(), rep.String())
	require.Contains(t, rep.String(), "apple@2026-01-01T10:00:00Z: emitted twice")
	require.Contains(t, rep.String(), "pear@2026-01-01T10:00:00Z: 1 sales (5 cents) in no emitted total")
	require.Contains(t, rep.String(), "FAIL: 2 violations")
}
