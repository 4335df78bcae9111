package integration

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// counterApp is a count-per-key application on its own topics: every input
// record increments its key's count in store "counts" and emits
// "key=count". Regression tests use it where they must name partitions and
// counts exactly, which the order service's random input does not allow.
type counterApp struct {
	e     *env
	in    string
	out   string
	group string
	parts int32
	topo  *topology.Topology
}

const counterStore = "counts"

// newCounterApp creates the app's input topic with parts partitions and
// its topology. The output and changelog topics are created by the first
// instance.
func newCounterApp(e *env, parts int32) *counterApp {
	t := e.t
	a := &counterApp{e: e, in: e.prefix + "counter-in", out: e.prefix + "counter-out", group: e.prefix + "counter", parts: parts}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.admin.CreateTopic(ctx, parts, -1, nil, a.in)
	require.NoError(t, err)
	require.NoError(t, resp.Err, "creating %s", a.in)

	b := topology.NewBuilder()
	src := topology.Source(b, "in", a.in, topology.String(), topology.String())
	counts := topology.Store(b, counterStore, topology.String(), topology.Int64())
	out := topology.Sink(b, "out", a.out, topology.String(), topology.String(), topology.Parents("count"))
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		n, _, err := counts.Get(ctx, r.Key)
		if err != nil {
			return err
		}
		n++
		if err := counts.Put(ctx, r.Key, n); err != nil {
			return err
		}
		return out.Send(ctx, r.Key, fmt.Sprintf("%s=%d", r.Key, n))
	}, topology.Parents(src.Name()), topology.Stores(counts.Name()))
	a.topo, err = b.Build()
	require.NoError(t, err)
	return a
}

// start runs an instance of the app in process, with FetchMaxWait 250ms so
// that an idle instance still answers rebalances quickly.
func (a *counterApp) start(name, dir string, opts ...processor.Opt) *inst {
	a.e.t.Helper()
	base := []processor.Opt{processor.Group(a.group), processor.DeadLetterTopic(a.group + "-dlq"),
		processor.FetchMaxWait(250 * time.Millisecond)}
	return a.e.launch(a.topo, "counter", name, dir, append(base, opts...)...)
}

// keyOn returns the n-th key (from 0) that the default partitioner
// (murmur2, as Java producers and Query) puts on partition p. Keys name
// their partition: "p2-7" lands on partition 2.
func (a *counterApp) keyOn(p int32, n int) string {
	part := kgo.StickyKeyPartitioner(nil).ForTopic(a.in)
	for i := 0; ; i++ {
		k := fmt.Sprintf("p%d-%d", p, i)
		if int32(part.Partition(&kgo.Record{Key: []byte(k)}, int(a.parts))) != p {
			continue
		}
		if n == 0 {
			return k
		}
		n--
	}
}

// produce writes one record per key, in order, partitioned by key.
func (a *counterApp) produce(keys ...string) {
	a.e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.e.brokers...))
	require.NoError(a.e.t, err)
	defer cl.Close()
	recs := make([]*kgo.Record, len(keys))
	for i, k := range keys {
		recs[i] = &kgo.Record{Topic: a.in, Key: []byte(k), Value: []byte(strconv.Itoa(i))}
	}
	require.NoError(a.e.t, cl.ProduceSync(context.Background(), recs...).FirstErr())
}

// outputs reads the committed outputs from the given offsets (nil: from
// the start) and returns each key's values in order.
func (a *counterApp) outputs(from map[int32]int64) map[string][]string {
	out := make(map[string][]string)
	for _, recs := range a.e.readFrom(a.out, from) {
		for _, r := range recs {
			out[string(r.Key)] = append(out[string(r.Key)], string(r.Value))
		}
	}
	return out
}

// waitOutputs waits until the committed outputs hold n values in all.
func (a *counterApp) waitOutputs(from map[int32]int64, n int) map[string][]string {
	a.e.t.Helper()
	var got map[string][]string
	waitFor(a.e.t, time.Minute, fmt.Sprintf("%d committed outputs", n), func() bool {
		a.e.failed()
		got = a.outputs(from)
		total := 0
		for _, vs := range got {
			total += len(vs)
		}
		return total >= n
	})
	return got
}

// countRunViolations returns, for every key, how its outputs depart from
// want[key] outputs "key=1".."key=want": a repeat, a gap or a missing
// count is an exactly-once violation.
func countRunViolations(got map[string][]string, want map[string]int) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		var exp []string
		for i := 1; i <= want[k]; i++ {
			exp = append(exp, fmt.Sprintf("%s=%d", k, i))
		}
		if !slices.Equal(got[k], exp) {
			out = append(out, fmt.Sprintf("key %s: outputs [%s], want [%s]", k, strings.Join(got[k], " "), strings.Join(exp, " ")))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("key %s: unexpected outputs [%s]", k, strings.Join(got[k], " ")))
		}
	}
	return out
}

// localCounts reads the counts of the given partitions from the closed
// state directory dir.
func (a *counterApp) localCounts(dir string, parts []int32) map[string]int64 {
	t := a.e.t
	t.Helper()
	counts, err := exactlytest.ReadStore(dir, counterStore, parts, topology.String(), topology.Int64())
	require.NoError(t, err, "reading %s", dir)
	return exactlytest.Merge(counts)
}

// waitSpread waits until each instance has restored exactly want[in]
// partitions, no two instances claiming the same one: a rebalance among
// them settled. It returns their partitions.
func waitSpread(t testing.TB, timeout time.Duration, want map[*inst]int) map[*inst][]int32 {
	t.Helper()
	var got map[*inst][]int32
	waitFor(t, timeout, "the assignment "+spreadString(want), func() bool {
		got = make(map[*inst][]int32)
		owner := make(map[int32]bool)
		for in, n := range want {
			parts := in.p.Assigned().Partitions()
			if len(parts) != n || !in.p.Ready() {
				return false
			}
			for _, p := range parts {
				if owner[p] {
					return false
				}
				owner[p] = true
			}
			got[in] = parts
		}
		return true
	})
	return got
}

func spreadString(want map[*inst]int) string {
	var s []string
	for in, n := range want {
		s = append(s, fmt.Sprintf("%s: %d partitions", in.name, n))
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

// waitFor polls cond every 20ms until it holds, or fails the test after
// timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkpoints reads the changelog checkpoint of the given partitions from
// the closed state directory dir.
func (a *counterApp) checkpoints(dir string, parts []int32) map[int32]int64 {
	t := a.e.t
	t.Helper()
	sd, err := exactlytest.OpenStateDir(dir)
	require.NoError(t, err)
	defer sd.Close()
	out := make(map[int32]int64)
	for _, p := range parts {
		off, ok, err := sd.Checkpoint(counterStore, p)
		require.NoError(t, err)
		require.True(t, ok, "%s has no checkpoint for partition %d", dir, p)
		out[p] = off
	}
	return out
}

// fold counts the input records per partition and key from the given
// offsets (nil: from the start) to the input's current end: the state the
// app must hold once it processed them.
func (a *counterApp) fold(from map[int32]int64) map[int32]map[string]int64 {
	out := make(map[int32]map[string]int64)
	for p, recs := range a.e.readFrom(a.in, from) {
		out[p] = make(map[string]int64)
		for _, r := range recs {
			out[p][string(r.Key)]++
		}
	}
	return out
}

// requireLocal is E4 for one closed instance: its local state of parts
// equals fold restricted to them.
func (a *counterApp) requireLocal(in *inst, parts []int32, fold map[int32]map[string]int64, msg string) {
	a.e.t.Helper()
	want := make(map[string]int64)
	for _, p := range parts {
		maps.Copy(want, fold[p])
	}
	require.Equal(a.e.t, want, a.localCounts(in.dir, parts), "E4: %s's local state of partitions %v: %s", in.name, parts, msg)
}
