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

	"github.com/exactly-stream/exactly/examples/enrich"
)

// TestChaosEnrichOnKfake runs a short enrich soak: kills, restarts,
// freezes, scaling and broker faults for 20 s with an idle phase, then
// the drain and enrich.Check. It found a processor that judged a joined
// input caught up by a last stable offset from before the order was
// fetched (148 and 603 orders with a stale profile, seeds 695539391 and
// 43), fixed in processor/order.go.
func TestChaosEnrichOnKfake(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "enrich")
	out, err := exec.Command("go", "build", "-race", "-o", bin, "github.com/exactly-stream/exactly/examples/enrich/cmd/enrich").CombinedOutput()
	require.NoError(t, err, "building the enrich binary:\n%s", out)
	var progress syncBuffer
	cfg := Config{
		Mode: ModeEnrich, Binary: bin, Duration: 20 * time.Second, Seed: chaosSeed(t),
		Rate: 100, Customers: 20, Partitions: 3, EventInterval: 1500 * time.Millisecond, IdleEvery: 12 * time.Second, IdleFor: 4 * time.Second,
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
	v := rep.Enrich
	require.NotNil(t, v)
	require.True(t, v.Checked)
	require.Empty(t, v.Violations, rep.String())
	require.Empty(t, rep.UnexpectedExits, rep.String())
	require.Positive(t, v.Orders)
	require.Positive(t, v.Versions)
	require.Equal(t, v.Orders, v.Output)
	require.NotEmpty(t, rep.Phases, "no idle phase")
	require.Positive(t, rep.Killed+rep.Stopped+rep.Paused+rep.ScaledUp+rep.ScaledDown+len(rep.Faults), "no failure was injected")
}

// TestEnrichCheckFindsPlantedViolation plants an order enriched twice, one
// with a profile newer than its timestamp and a lost one in a cluster's
// committed output, with no instance, and requires the enrich mode's check
// to report them.
func TestEnrichCheckFindsPlantedViolation(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, enrich.TopicEnriched))
	require.NoError(t, err)
	defer c.Close()
	r := &run{cfg: &Config{Out: os.Stderr}, st: &stats{}, brokers: c.ListenAddrs()}
	r.enrichTopics()
	cl, err := r.client()
	require.NoError(t, err)
	defer cl.Close()
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	r.enr.versions = []enrich.Version{{Customer: "c1", Profile: "c1-v0", Time: at}, {Customer: "c1", Profile: "c1-v1", Time: at.Add(time.Second)}}
	r.enr.placed = []enrich.Placed{
		{Customer: "c1", Order: enrich.Order{ID: "o0", AmountCents: 1}, Time: at.Add(time.Millisecond)},
		{Customer: "c1", Order: enrich.Order{ID: "o1", AmountCents: 2}, Time: at.Add(2 * time.Millisecond)},
		{Customer: "c1", Order: enrich.Order{ID: "o2", AmountCents: 3}, Time: at.Add(3 * time.Millisecond)},
	}
	rec := func(id string, cents int64, profile string) *kgo.Record {
		v, err := json.Marshal(enrich.Enriched{Order: enrich.Order{ID: id, AmountCents: cents}, Profile: profile})
		require.NoError(t, err)
		return &kgo.Record{Topic: enrich.TopicEnriched, Key: []byte("c1"), Value: v}
	}
	require.NoError(t, cl.ProduceSync(context.Background(), rec("o0", 1, "c1-v0"), rec("o0", 1, "c1-v0"), rec("o1", 2, "c1-v1")).FirstErr())

	rep, err := r.enrichCheck(context.Background())
	require.NoError(t, err)
	s := rep.String()
	require.Contains(t, s, `order "o0": enriched twice`)
	require.Contains(t, s, `order "o1" of c1 at 2026-01-01T10:00:00.002Z: profile "c1-v1", want "c1-v0"`)
	require.Contains(t, s, `order "o2": not in the output (lost)`)
	require.Contains(t, s, "FAIL:")
	require.False(t, rep.OK())
}
