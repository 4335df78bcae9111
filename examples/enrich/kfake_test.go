package enrich_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/enrich"
	"github.com/exactly-stream/exactly/processor"
)

// coldStart writes every profile version and every order to a fresh
// in-process cluster (the orders first, so that reading in arrival order
// would meet no profile at all), runs the enrich topology in process with
// opts until it has committed every input record, and returns what Check
// says of the committed output.
func coldStart(t *testing.T, opts ...processor.Opt) error {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, enrich.TopicOrders, enrich.TopicCustomers))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()

	// 10 customers with 8 versions each, a minute apart; 1200 orders over
	// the 9 minutes, so every order falls between two versions of its
	// customer (or before the first).
	versions, placed := enrich.Generate(uint64(time.Now().UnixNano()), time.Now().Add(-time.Hour).Truncate(time.Second), 10, 8, 1200)
	customers, orders := enrich.Records("", versions, placed)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	ctx := context.Background()
	require.NoError(t, cl.ProduceSync(ctx, orders...).FirstErr())
	require.NoError(t, cl.ProduceSync(ctx, customers...).FirstErr())

	topo, err := enrich.Topology("")
	require.NoError(t, err)
	base := []processor.Opt{
		processor.Brokers(brokers...), processor.Group(enrich.Group), processor.InstanceID("a"),
		processor.StateDir(t.TempDir()), processor.DeadLetterTopic(enrich.TopicDeadLetter),
		processor.CommitInterval(50 * time.Millisecond), processor.MaxRecordsPerTxn(50),
		processor.KgoOpts(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond)),
	}
	p, err := processor.New(topo, append(base, opts...)...)
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	total := int64(len(customers) + len(orders))
	deadline := time.Now().Add(time.Minute)
	for p.Stats().Records < total {
		select {
		case err := <-done:
			t.Fatalf("the processor stopped after %d of %d records: %v", p.Stats().Records, total, err)
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "%d of %d records committed after a minute", p.Stats().Records, total)
	}
	stop()
	require.NoError(t, <-done)
	require.Equal(t, total, p.Stats().Records, "every input record committed once")
	require.Zero(t, p.Stats().DeadLettered)

	recs, err := exactlytest.ReadCommitted(ctx, cl, enrich.TopicEnriched, exactlytest.ReadOptions{Timeout: 30 * time.Second})
	require.NoError(t, err)
	out, err := enrich.Decode(exactlytest.Records(recs))
	require.NoError(t, err)
	return enrich.Check(versions, placed, out)
}

// TestEnrichColdStartOnKfake: on a cold start, with the orders written
// before the profiles, every order is enriched exactly once with its
// customer's profile as of the order's time, because the processor reads
// a task's orders and customers in timestamp order. (With
// processor.TaskIdle(-1), arrival order, most orders meet the wrong
// profile.)
func TestEnrichColdStartOnKfake(t *testing.T) {
	require.NoError(t, coldStart(t))
}
