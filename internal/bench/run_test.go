package bench

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/processor"
)

// buildExactly builds the exactly binary for the RSS child.
func buildExactly(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "exactly")
	out, err := exec.Command("go", "build", "-o", exe, "github.com/exactly-stream/exactly/cmd/exactly").CombinedOutput()
	require.NoError(t, err, string(out))
	return exe
}

// outputBytes sums the key and value sizes of topic's committed data
// records, leaving out offset records (the processor's carry a header, the
// ceiling's a key prefix).
type outputBytes struct{ records, keys, values int64 }

func countBytes(t *testing.T, c *cluster, topic string) outputBytes {
	t.Helper()
	var n outputBytes
	_, err := readTopic(context.Background(), c, topic, func(r *kgo.Record) error {
		if len(r.Headers) > 0 || strings.HasPrefix(string(r.Key), "\x00") {
			return nil
		}
		n.records++
		n.keys += int64(len(r.Key))
		n.values += int64(len(r.Value))
		return nil
	})
	require.NoError(t, err)
	return n
}

// TestRunSmall runs every part on a small input and checks the figures
// are there and plausible, and that the ceiling produced exactly the bytes
// the pipeline did.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every part of the bench (several seconds)")
	}
	cfg := QuickConfig()
	cfg.KfakeBrokers = 1
	cfg.Partitions = 3
	cfg.TopicPrefix = "t-"
	cfg.KeepTopics = true // read back below; the cluster goes with the test
	cfg.Orders, cfg.Customers = 2000, 40
	cfg.TxnSizes = []int{100, 1000}
	cfg.CommitIntervals = []time.Duration{100 * time.Millisecond}
	cfg.LatencyDuration = time.Second
	cfg.RestoreCustomers, cfg.RSSOrders = 3000, 100
	cfg.Instances = []int{1, 2}
	cfg.Dir = t.TempDir()
	cfg.Exe = buildExactly(t)
	var progress bytes.Buffer
	cfg.Progress = &progress

	ctx := context.Background()
	c, err := openCluster(ctx, &Config{KfakeBrokers: 1, Replication: -1})
	require.NoError(t, err)
	defer c.close()
	cfg.Brokers = c.brokers // a "real" cluster that outlives Run, to read back
	res, err := Run(ctx, cfg)
	require.NoError(t, err, progress.String())

	require.Equal(t, int64(2000), res.Setup.Orders)
	require.Len(t, res.Throughput, 2)
	for _, cell := range res.Throughput {
		for _, m := range []*Measurement{cell.Pipeline, cell.Ceiling, cell.AtLeastOnce} {
			require.NotNil(t, m)
			require.Equal(t, int64(2000), m.Records)
			require.Positive(t, m.RecordsPerSec)
			require.Positive(t, m.Transactions)
		}
		require.Positive(t, cell.CeilingRatio())
		// Every committed transaction's time, and the part of it spent
		// ending (flush, offset commit, EndTxn), which is within it.
		require.Positive(t, cell.Pipeline.Ending)
		require.Greater(t, cell.Pipeline.TxnTime, cell.Pipeline.Ending)
		require.Contains(t, progress.String(), "of which ending (flush, offset commit, EndTxn)")
	}
	require.NotNil(t, res.Latency)
	require.Positive(t, res.Latency.Events)
	require.LessOrEqual(t, res.Latency.P50, res.Latency.P99)
	require.LessOrEqual(t, res.Latency.P99, res.Latency.Max)
	require.NotNil(t, res.Restore)
	require.Equal(t, int64(2*3000), res.Restore.FromEmpty.Records, "one customer and one order id record per order")
	require.Zero(t, res.Restore.FromCheckpoint.Records, "the checkpoint is at the end of the changelog")
	require.NotNil(t, res.Restore.FetchOnly)
	// Every record the restore applied, and the processor's offset records.
	require.GreaterOrEqual(t, res.Restore.FetchOnly.Records, res.Restore.FromEmpty.Records)
	require.Less(t, res.Restore.FetchOnly.Records, res.Restore.FromEmpty.Records+100)
	require.Positive(t, res.Restore.FetchOnly.SerialPerSec())
	require.Positive(t, res.Restore.FetchOnly.ConcurrentPerSec())
	require.NotNil(t, res.RSS)
	require.Greater(t, res.RSS.PeakBytes, int64(10<<20))
	require.Len(t, res.Scaling, 2)
	require.Len(t, res.Targets, 5)

	// The ceiling's outputs have the pipeline's sizes, record for record:
	// per input an event and one record in each store's changelog.
	var pipeline map[string]outputBytes
	for _, name := range []string{"pipeline-txn100-100ms", "ceiling-txn100-100ms", "alo-txn100-100ms"} {
		got := map[string]outputBytes{"events": countBytes(t, c, "t-"+name+"-events")}
		var changelogValues int64
		for _, store := range orders.OrderStores() {
			cl := countBytes(t, c, processor.ChangelogTopic("t-"+name, store))
			require.Equal(t, int64(2000), cl.records, "%s %s", name, store)
			got[store], changelogValues = cl, changelogValues+cl.values
		}
		require.Equal(t, int64(2000), got["events"].records, name)
		require.Equal(t, res.Setup.EventBytes, got["events"].values, name)
		require.Equal(t, res.Setup.ChangelogBytes, changelogValues, name)
		if pipeline == nil {
			pipeline = got
		}
		require.Equal(t, pipeline, got, "%s: keys and values of the pipeline's sizes", name)
	}
	var table bytes.Buffer
	require.NoError(t, res.WriteTable(&table))
	require.Contains(t, table.String(), "pipeline/ceiling")
	require.NoError(t, WriteChart(&bytes.Buffer{}, res))
}

// TestCeilingLoops runs the ceiling as as many bare loops as the pipeline
// has transaction loops: each its own transactional ID in the one group,
// and together they commit every input record once.
func TestCeilingLoops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a throughput cell (a few seconds)")
	}
	cfg := QuickConfig()
	cfg.KfakeBrokers = 1
	cfg.Partitions = 4
	cfg.TopicPrefix = "l-"
	cfg.KeepTopics = true
	cfg.Orders, cfg.Customers = 3000, 40
	cfg.TxnSizes = []int{100}
	cfg.CommitIntervals = []time.Duration{100 * time.Millisecond}
	cfg.Loops = 2
	cfg.Skip = []string{"pipeline", "alo", "latency", "restore", "rss", "scaling"}
	cfg.Dir = t.TempDir()
	var progress bytes.Buffer
	cfg.Progress = &progress

	ctx := context.Background()
	c, err := openCluster(ctx, &Config{KfakeBrokers: 1, Replication: -1})
	require.NoError(t, err)
	defer c.close()
	cfg.Brokers = c.brokers
	res, err := Run(ctx, cfg)
	require.NoError(t, err, progress.String())
	require.Len(t, res.Throughput, 1)
	m := res.Throughput[0].Ceiling
	require.NotNil(t, m)
	require.Equal(t, int64(3000), m.Records)

	txns, err := c.adm.ListTransactions(ctx, nil, nil)
	require.NoError(t, err)
	var ids []string
	for _, tx := range txns.Sorted() {
		if strings.HasPrefix(tx.TxnID, "l-ceiling-") {
			ids = append(ids, tx.TxnID)
		}
	}
	require.Equal(t, []string{"l-ceiling-txn100-100ms-1", "l-ceiling-txn100-100ms-2"}, ids)
	events := countBytes(t, c, "l-ceiling-txn100-100ms-events")
	require.Equal(t, int64(3000), events.records, "every input once, by one loop or the other")
}
