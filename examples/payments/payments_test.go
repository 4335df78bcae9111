package payments

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/dbsink"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/sqldb"
)

// TestPaymentServicePaysEachOrderOnce: events from committed transactions
// are paid once each (amount and customer from the event, attempts 1),
// malformed events dead-lettered once, aborted events never paid.
func TestPaymentServicePaysEachOrderOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ts := orders.DefaultTopics()
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, ts.Events))
		require.NoError(t, err)
		defer c.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("order-service"))
		require.NoError(t, err)
		defer cl.Close()
		gen := Events{Topic: ts.Events, Customers: 7, MalformedEvery: 10}
		want, bad, err := gen.Produce(ctx, cl, 0, 150, false)
		require.NoError(t, err)
		_, _, err = gen.Produce(ctx, cl, 150, 20, true)
		require.NoError(t, err)
		more, bad2, err := gen.Produce(ctx, cl, 170, 50, false)
		require.NoError(t, err)
		maps.Copy(want, more)
		bad += bad2
		require.Positive(t, bad)

		require.NoError(t, EnsureSchema(ctx, db.DB, db.Dialect))
		s, err := New(db.DB, db.Dialect, "", ts, dbsink.Brokers(c.ListenAddrs()...), dbsink.FetchMaxWait(100*time.Millisecond))
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Go(func() { _ = s.Run(ctx) })
		defer wg.Wait()
		defer s.Close()
		var paid map[string]Payment
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if paid, err = Read(ctx, db.DB); err == nil && len(paid) >= len(want) && s.Stats().DeadLettered >= int64(bad) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		require.NoError(t, err)
		require.Empty(t, Check(paid, want), Summary(paid))
		require.EqualValues(t, bad, s.Stats().DeadLettered)
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM exactly_sink_dead_letters WHERE sink_name = 'exactly-payments-db'").Scan(&n))
		require.Equal(t, bad, n)
	})
}

// TestCheck finds each kind of problem.
func TestCheck(t *testing.T) {
	events := map[string]orders.Event{
		"a": {OrderID: "a", CustomerID: "c", AmountCents: 5},
		"b": {OrderID: "b", CustomerID: "c", AmountCents: 6},
		"d": {OrderID: "d", CustomerID: "c", AmountCents: 7},
	}
	paid := map[string]Payment{
		"a": {OrderID: "a", CustomerID: "c", AmountCents: 5, Attempts: 1},
		"b": {OrderID: "b", CustomerID: "c", AmountCents: 6, Attempts: 2},
		"x": {OrderID: "x", CustomerID: "c", AmountCents: 1, Attempts: 1},
	}
	got := strings.Join(Check(paid, events), "\n")
	for _, want := range []string{"order b: applied 2 times", "order d: no payment", "order x: paid without an event"} {
		require.Contains(t, got, want)
	}
	require.NotContains(t, got, "order a")
	require.Empty(t, Check(map[string]Payment{"a": paid["a"]}, map[string]orders.Event{"a": events["a"]}))
}

// TestSchemaCreates: the script of every dialect is valid on the
// configured databases, twice.
func TestSchemaCreates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		for range 2 {
			for _, stmt := range strings.Split(SchemaSQL(db.Dialect), ";\n") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				_, err := db.ExecContext(context.Background(), stmt)
				require.NoError(t, err, stmt)
			}
		}
	})
	for _, d := range sqldb.Dialects {
		require.Contains(t, SchemaSQL(d), "CREATE TABLE IF NOT EXISTS payments")
	}
}
