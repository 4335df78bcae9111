package dsl_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// clicks counts, per user, the clicks that are not from bots, and writes
// every new count to "click-counts".
func clicks(t testing.TB) (*topology.Topology, topology.StoreRef[string, int64]) {
	d := dsl.New(nil, dsl.RequireNames())
	in := dsl.StreamFrom(d, "clicks", "clicks", str, str)
	human := in.FilterNot(func(_, v string) bool { return v == "bot" })
	counts := human.GroupByKey(str, str).Count(dsl.Named("clicks-per-user"))
	counts.ToStream().To("click-counts", str, topology.Int64())
	store, _ := counts.Store()
	return build(t, d), store
}

// TestOnProcessor runs a DSL topology on the real runtime and an
// in-process cluster, in two lives: the second instance starts on an
// empty state directory, so it must restore the count store from its
// changelog to go on counting. Every key's committed outputs must be
// 1..n exactly once, and the queried store the fold of the input.
func TestOnProcessor(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "clicks"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	ctx := context.Background()

	want := map[string]int64{}
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			user, v := fmt.Sprintf("u%d", i%5), "click"
			if i%4 == 0 {
				v = "bot"
			} else {
				want[user]++
			}
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "clicks", Key: []byte(user), Value: []byte(v)}).FirstErr())
		}
	}
	life := func(name string) {
		top, store := clicks(t)
		p, err := processor.New(top, processor.Brokers(c.ListenAddrs()...), processor.Group("clicks"),
			processor.InstanceID("clicks-1"), processor.StateDir(t.TempDir()), processor.CommitInterval(20*time.Millisecond))
		require.NoError(t, err)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(runCtx) }()
		waitFor(t, 30*time.Second, name+": store equals the fold of the input", func() bool {
			for user, n := range want {
				got, _, err := processor.Get(runCtx, p, store, user)
				if err != nil || got != n {
					return false
				}
			}
			return true
		})
		cancel()
		require.NoError(t, <-done)
	}
	produce(0, 40)
	life("first life")
	produce(40, 100)
	life("second life, restored")

	recs, err := exactlytest.ReadCommitted(ctx, cl, "click-counts", exactlytest.ReadOptions{})
	require.NoError(t, err)
	seen := map[string][]int64{}
	for _, rs := range recs {
		for _, r := range rs {
			n, err := topology.Int64().Decode(r.Value)
			require.NoError(t, err)
			seen[string(r.Key)] = append(seen[string(r.Key)], n)
		}
	}
	for user, n := range want {
		var seq []int64
		for i := int64(1); i <= n; i++ {
			seq = append(seq, i)
		}
		require.Equal(t, seq, seen[user], "outputs of %s", user)
	}
	require.Len(t, seen, len(want))
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
