package bench

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// testCluster starts a one-broker embedded cluster.
func testCluster(t *testing.T) *cluster {
	t.Helper()
	c, err := openCluster(context.Background(), &Config{KfakeBrokers: 1, Replication: -1})
	require.NoError(t, err)
	t.Cleanup(c.close)
	return c
}

// produceTestInput writes orders with malformed records and duplicates to
// a new topic of 3 partitions.
func produceTestInput(t *testing.T, c *cluster, topic string, n int) orders.ProduceStats {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, c.createTopic(ctx, topic, 3, false))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	require.NoError(t, err)
	defer cl.Close()
	st, err := orders.Produce(ctx, cl, orders.ProduceConfig{
		Count: n, Customers: 20, MalformedShare: 0.05, DuplicateShare: 0.05, Seed: 7, Topic: topic,
	})
	require.NoError(t, err)
	return st
}

// TestAtLeastOnceLoopProcessesEverything runs the at-least-once loop over
// an input with malformed records and duplicates, without failures: then
// at least once is exactly once, and Verify must find E1-E3 and E5 intact
// and the local state must be the fold of the inputs (E4).
func TestAtLeastOnceLoopProcessesEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := testCluster(t)
	const n = 600
	st := produceTestInput(t, c, "alo-in", n)
	r := &runner{cfg: Config{Partitions: 3}, cluster: c}
	a := newApp("alo-test", "alo-in")
	require.NoError(t, r.createOutputs(ctx, a))

	dir := t.TempDir()
	m, err := measure(ctx, time.Minute, n, func(ctx context.Context, fl *finishLine) (txnCounts, error) {
		l, err := newALOLoop(c.brokers, a, dir, batcher{size: 50, interval: 100 * time.Millisecond})
		if err != nil {
			return txnCounts{}, err
		}
		err = l.run(ctx, func(n int) { fl.add(int64(n)) })
		return l.counts, errors.Join(err, l.close())
	})
	require.NoError(t, err)
	require.Equal(t, int64(n), m.Records)
	require.GreaterOrEqual(t, m.Transactions, int64(n/50), "batches hold at most 50 records")

	committed, err := c.committedRecords(ctx, a.group, a.topics.Orders)
	require.NoError(t, err)
	require.Equal(t, int64(n), committed, "offsets committed after the outputs")

	rep, err := orders.Verify(ctx, c.cl, orders.VerifyOptions{
		OrdersTopic: a.topics.Orders, EventsTopic: a.topics.Events, DLQTopic: a.topics.DLQ,
	})
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, st.Valid, rep.Events)
	require.Equal(t, st.Malformed, rep.DLQ)

	// The loop keeps no changelog checkpoints, so read the stores directly
	// instead of through orders.CheckLocalState.
	db, err := state.Open(dir, state.Options{})
	require.NoError(t, err)
	defer db.Close()
	got := orders.Expected{Customers: map[string]orders.Customer{}, OrderIDs: map[string]string{}}
	for p := range int32(3) {
		customers, errf := state.NewView(db, orders.StoreCustomers, p, topology.String(), orders.CustomerSerde()).All()
		for k, v := range customers {
			got.Customers[k] = v
		}
		require.NoError(t, errf())
		orderIDs, errf := state.NewView(db, orders.StoreOrderIDs, p, topology.String(), topology.String()).All()
		for k, v := range orderIDs {
			got.OrderIDs[k] = v
		}
		require.NoError(t, errf())
	}
	require.Equal(t, rep.Expected, got, "E4: local state is the fold of the inputs")
}

// TestSizeFold checks the sizes the ceiling produces against what the
// order topology emits, record by record.
func TestSizeFold(t *testing.T) {
	t.Parallel()
	order := func(id, cust string, amount int64) []byte {
		b, err := json.Marshal(orders.Order{OrderID: id, CustomerID: cust, AmountCents: amount, CreatedAt: time.Unix(0, 0).UTC()})
		require.NoError(t, err)
		return b
	}
	recs := []*kgo.Record{
		{Key: []byte("c1"), Value: order("o1", "c1", 5)},
		{Key: []byte("c1"), Value: order("o2", "c1", 7)},
		{Key: []byte("c1"), Value: order("o1", "c1", 5)},   // duplicate: nothing
		{Key: []byte("c1"), Value: []byte(`{"order_id":`)}, // malformed: dead-lettered as it is
		{Key: []byte("c2"), Value: order("o2", "c2", 1)},   // another customer's id: dead-lettered
	}
	f := newSizeFold()
	for i, r := range recs {
		r.Offset = int64(i)
		require.NoError(t, f.add(r))
	}
	cust := func(c orders.Customer) int32 {
		b, err := orders.CustomerSerde().Encode(c)
		require.NoError(t, err)
		return int32(len(b))
	}
	event := func(e orders.Event) int32 {
		b, err := orders.EventSerde().Encode(e)
		require.NoError(t, err)
		return int32(len(b))
	}
	require.Equal(t, []outputSize{
		{event: event(orders.Event{OrderID: "o1", CustomerID: "c1", AmountCents: 5, CustomerOrderCount: 1, CustomerTotalCents: 5}),
			customer: cust(orders.Customer{OrderCount: 1, TotalCents: 5}), orderID: 2, orderIDKey: 2},
		{event: event(orders.Event{OrderID: "o2", CustomerID: "c1", AmountCents: 7, CustomerOrderCount: 2, CustomerTotalCents: 12}),
			customer: cust(orders.Customer{OrderCount: 2, TotalCents: 12}), orderID: 2, orderIDKey: 2},
		{},
		{event: int32(len(`{"order_id":`))},
		{event: int32(len(recs[4].Value))},
	}, f.sizes[0])
	require.Equal(t, outputSize{}, f.sizes.of(0, 99), "out of range")
	require.Error(t, f.add(&kgo.Record{Offset: 7, Value: order("o3", "c1", 1), Key: []byte("c1")}), "a gap in offsets")
}
