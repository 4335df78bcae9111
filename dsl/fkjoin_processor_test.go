package dsl_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/processor"
)

// TestForeignKeyJoinOnProcessor runs the foreign-key left join on the
// real runtime and an in-process cluster with three partitions: the
// processor must accept the shape (a store written by one input and read
// by another, two internal topics, each written by nodes of other inputs)
// and create the internal topics, and the committed results, folded per
// key, must reach the brute-force join, first of a backlog, then of
// updates made while it runs (a foreign key change, a left deletion, a
// right deletion and a right update), the updates by a second instance
// that restored everything from the changelogs onto an empty state
// directory.
func TestForeignKeyJoinOnProcessor(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders", "customers"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	d := dsl.New(nil, dsl.RequireNames())
	orders := dsl.TableFrom(d, "orders", "orders", str, str)
	customers := dsl.TableFrom(d, "customers", "customers", pstr, str)
	dsl.ForeignKeyLeftJoin(orders, customers, orderCustomer, func(k, o, c string, found bool) string {
		if !found {
			c = "?"
		}
		return o + "@" + c
	}, dsl.Named("order-customers")).ToStream().To("order-customers", str, str)
	p, err := processor.New(build(t, d), processor.Brokers(c.ListenAddrs()...), processor.Group("fk"),
		processor.InstanceID("fk-1"), processor.StateDir(t.TempDir()), processor.CommitInterval(20*time.Millisecond))
	require.NoError(t, err)

	L, R := map[string]string{}, map[string]string{}
	produce := func(topic, key, value string) {
		r := &kgo.Record{Topic: topic, Key: []byte(key)}
		if value != "" {
			r.Value = []byte(value)
		}
		require.NoError(t, cl.ProduceSync(ctx, r).FirstErr())
		m := map[string]map[string]string{"orders": L, "customers": R}[topic]
		if value == "" {
			delete(m, key)
		} else {
			m[key] = value
		}
	}
	want := func() map[string]string {
		out := map[string]string{}
		for k, v := range L {
			c := "?"
			if f := orderCustomer(k, v); f != nil {
				if rv, ok := R[*f]; ok {
					c = rv
				}
			}
			out[k] = v + "@" + c
		}
		return out
	}
	folded := func() map[string]string {
		recs, err := exactlytest.ReadCommitted(ctx, cl, "order-customers", exactlytest.ReadOptions{})
		if err != nil {
			return nil
		}
		out := map[string]string{}
		for _, rs := range recs {
			for _, r := range rs {
				if len(r.Value) == 0 { // a deletion: str encodes the zero value as ""
					delete(out, string(r.Key))
				} else {
					out[string(r.Key)] = string(r.Value)
				}
			}
		}
		return out
	}

	for i := range 5 {
		produce("customers", fmt.Sprintf("c%d", i), fmt.Sprintf("name%d", i))
	}
	for i := range 20 {
		produce("orders", fmt.Sprintf("o%d", i), fmt.Sprintf("c%d/item%d", i%6, i)) // c5 has no customer
	}
	run := func(p *processor.Processor) (stop func()) {
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(rctx) }()
		return func() {
			rcancel()
			require.NoError(t, <-done)
		}
	}
	stop := run(p)
	waitFor(t, 60*time.Second, "the backlog's join", func() bool { return maps.Equal(want(), folded()) })
	// A new instance on an empty state directory: the subscriptions and
	// both tables come back from their changelogs, and the updates below
	// reach the right subscribers only through the restored subscriptions.
	stop()
	p, err = processor.New(build(t, d), processor.Brokers(c.ListenAddrs()...), processor.Group("fk"),
		processor.InstanceID("fk-1"), processor.StateDir(t.TempDir()), processor.CommitInterval(20*time.Millisecond))
	require.NoError(t, err)
	stop = run(p)
	defer stop()

	produce("orders", "o1", "c2/item1") // c1 -> c2
	produce("orders", "o2", "")         // deleted
	produce("customers", "c3", "")      // o3, o9, o15 lose their customer
	produce("customers", "c4", "renamed")
	produce("orders", "o7", "/item7") // no foreign key
	waitFor(t, 60*time.Second, "the updates' join", func() bool { return maps.Equal(want(), folded()) })
}
