package topologytest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// wordCount splits lines into words, re-keys them by word through the
// repartition topic "words" and counts per word in store "counts",
// emitting word=count to "out". A line "bad" is rejected.
func wordCount(t testing.TB) (*topology.Topology, topology.StoreRef[string, int64]) {
	b := topology.NewBuilder()
	lines := topology.Source(b, "lines", "lines", topology.String(), topology.String())
	words := topology.Repartition(b, "words", topology.String(), topology.String(), topology.Parents("split"))
	topology.Node(b, "split", func(ctx *topology.Call, r topology.Record[string, string]) error {
		if r.Value == "bad" {
			return errors.New("bad line")
		}
		for _, w := range strings.Fields(r.Value) {
			if err := words.Send(ctx, w, w); err != nil {
				return err
			}
		}
		return nil
	}, topology.Parents(lines.Name()))
	counts := topology.Store(b, "counts", topology.String(), topology.Int64())
	out := topology.Sink(b, "out", "out", topology.String(), topology.Int64(), topology.Parents("count"))
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		n, _, err := counts.Get(ctx, r.Key)
		if err != nil {
			return err
		}
		n++
		if err := counts.Put(ctx, r.Key, n); err != nil {
			return err
		}
		return out.Send(ctx, r.Key, n)
	}, topology.Parents(words.Name()), topology.Stores(counts.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	return topo, counts
}

func TestWordCountThroughRepartition(t *testing.T) {
	topo, counts := wordCount(t)
	d := topologytest.New(t, topo, topologytest.Options{Application: "wc", Partitions: 3})
	in := topologytest.Input(d, "lines", topology.String(), topology.String())
	// Lines land on different partitions; the same word from two of them
	// must meet in one task, so one count.
	in.PipeTo(0, topology.Record[string, string]{Key: "a", Value: "the cat"})
	in.PipeTo(1, topology.Record[string, string]{Key: "b", Value: "the dog"})
	in.PipeTo(2, topology.Record[string, string]{Key: "c", Value: "the end"})

	n, ok := topologytest.Get(d, counts, "the")
	require.True(t, ok)
	require.Equal(t, int64(3), n)
	got := topologytest.Output(d, "out", topology.String(), topology.Int64()).ReadKeyValues()
	require.Equal(t, map[string]int64{"the": 3, "cat": 1, "dog": 1, "end": 1}, got)

	// The repartition topic is named for the application and partitioned
	// by word: every "the" went to one partition.
	rep := d.Produced("wc-words-repartition")
	require.Len(t, rep, 6)
	var parts []int32
	for _, r := range rep {
		if string(r.Key) == "the" {
			parts = append(parts, r.Partition)
		}
	}
	require.Equal(t, []int32{parts[0], parts[0], parts[0]}, parts)
	require.Equal(t, d.Partition([]byte("the")), parts[0])
}

func TestBadRecordIsDeadLetteredWithNoEffects(t *testing.T) {
	topo, counts := wordCount(t)
	d := topologytest.New(t, topo, topologytest.Options{})
	in := topologytest.Input(d, "lines", topology.String(), topology.String())
	in.PipeRecord(topology.Record[string, string]{Key: "k", Value: "bad", Headers: []topology.Header{{Key: "h", Value: []byte("v")}}})
	in.Pipe("k", "ok")

	dl := d.DeadLetters()
	require.Len(t, dl, 1)
	require.Equal(t, "test-dlq", dl[0].Topic)
	require.Equal(t, "bad", string(dl[0].Value))
	hdrs := map[string]string{}
	for _, h := range dl[0].Headers {
		hdrs[h.Key] = string(h.Value)
	}
	require.Equal(t, "v", hdrs["h"])
	require.Contains(t, hdrs["exactly.error"], "bad line")
	require.Equal(t, "lines", hdrs["exactly.source.topic"])
	require.Equal(t, "0", hdrs["exactly.source.partition"])
	require.Equal(t, "0", hdrs["exactly.source.offset"])
	_, ok := topologytest.Get(d, counts, "bad")
	require.False(t, ok)
	n, _ := topologytest.Get(d, counts, "ok")
	require.Equal(t, int64(1), n)
}

// rollbackTopology writes a key, then fails on the value "fail": the write
// of the failing record must be rolled back, while that of the previous
// record stays.
func TestFailedRecordRollsBackItsWrites(t *testing.T) {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	seen := topology.Store(b, "seen", topology.String(), topology.String())
	topology.Node(b, "n", func(ctx *topology.Call, r topology.Record[string, string]) error {
		if err := seen.Put(ctx, r.Key, r.Value); err != nil {
			return err
		}
		if r.Value == "fail" {
			return errors.New("fails after writing")
		}
		return nil
	}, topology.Parents(src.Name()), topology.Stores(seen.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	d := topologytest.New(t, topo, topologytest.Options{})
	in := topologytest.Input(d, "in", topology.String(), topology.String())
	in.Pipe("k", "first")
	in.Pipe("k", "fail")
	v, _ := topologytest.Get(d, seen, "k")
	require.Equal(t, "first", v)
	require.Len(t, d.DeadLetters(), 1)
}

// punctuated counts records per partition in "n" and, on each punctuation,
// emits the count to "ticks" keyed by the partition, with the time fired.
func punctuated(t testing.TB, typ topology.PunctuationType, every time.Duration) *topology.Topology {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String(),
		topology.WithTimestamp(func(_ string, v string, rt time.Time) time.Time {
			if ts, err := time.Parse(time.RFC3339, v); err == nil {
				return ts
			}
			return rt
		}))
	n := topology.Store(b, "n", topology.String(), topology.Int64())
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		c, _, err := n.Get(ctx, "count")
		if err != nil {
			return err
		}
		return n.Put(ctx, "count", c+1)
	}, topology.Parents(src.Name()), topology.Stores(n.Name()))
	ticks := topology.Sink(b, "ticks", "ticks", topology.String(), topology.String(), topology.Parents("tick"))
	topology.Schedule(b, "tick", every, typ, func(ctx *topology.Call, at time.Time) error {
		c, _, err := n.Get(ctx, "count")
		if err != nil {
			return err
		}
		return ticks.SendRecord(ctx, topology.Record[string, string]{
			Key:       string(rune('0' + ctx.Partition())),
			Value:     at.UTC().Format(time.RFC3339) + " " + string(rune('0'+c)),
			Timestamp: at,
		})
	}, topology.Stores(n.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	return topo
}

func TestWallClockPunctuatorFiresOnIdlePartition(t *testing.T) {
	d := topologytest.New(t, punctuated(t, topology.WallClock, time.Minute), topologytest.Options{Partitions: 2})
	in := topologytest.Input(d, "in", topology.String(), topology.String())
	in.PipeTo(0, topology.Record[string, string]{Key: "k", Value: "x"})
	ticks := topologytest.Output(d, "ticks", topology.String(), topology.String())

	d.AdvanceWallClock(59 * time.Second)
	require.Zero(t, ticks.Len(), "not due yet")
	d.AdvanceWallClock(time.Second)
	got := ticks.ReadKeyValues()
	// Partition 1 never received a record, and still punctuates.
	require.Equal(t, map[string]string{"0": "2024-01-01T00:01:00Z 1", "1": "2024-01-01T00:01:00Z 0"}, got)
	d.AdvanceWallClock(time.Minute)
	require.Equal(t, 2, ticks.Len())
}

func TestStreamTimePunctuatorFiresOnBoundaryCrossing(t *testing.T) {
	d := topologytest.New(t, punctuated(t, topology.StreamTime, time.Minute), topologytest.Options{})
	in := topologytest.Input(d, "in", topology.String(), topology.String())
	ticks := topologytest.Output(d, "ticks", topology.String(), topology.String())

	in.Pipe("k", "2024-01-01T10:00:30Z") // sets stream time: no crossing
	require.Equal(t, time.Date(2024, 1, 1, 10, 0, 30, 0, time.UTC), d.StreamTime(0).UTC())
	in.Pipe("k", "2024-01-01T10:00:59Z")
	in.Pipe("k", "2024-01-01T09:00:00Z") // late: stream time does not go back
	require.Zero(t, ticks.Len())
	in.Pipe("k", "2024-01-01T10:03:10Z") // crosses three boundaries: fires once
	got := ticks.ReadAll()
	require.Len(t, got, 1)
	require.Equal(t, "2024-01-01T10:03:00Z 4", got[0].Value, "fires for the last boundary crossed, after the record")
	d.AdvanceWallClock(time.Hour)
	require.Zero(t, ticks.Len(), "wall-clock time does not drive a stream-time punctuator")
}

// fakeTB records a failure instead of stopping the test, so a test can
// check that the driver fails.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestPunctuatorErrorAbortsTheTransaction(t *testing.T) {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	s := topology.Store(b, "s", topology.String(), topology.String())
	topology.Node(b, "n", func(*topology.Call, topology.Record[string, string]) error { return nil }, topology.Parents(src.Name()))
	topology.Schedule(b, "p", time.Second, topology.WallClock, func(ctx *topology.Call, _ time.Time) error {
		if err := s.Put(ctx, "k", "written"); err != nil {
			return err
		}
		return errors.New("punctuator failed")
	}, topology.Stores(s.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	f := &fakeTB{TB: t}
	d := topologytest.New(f, topo, topologytest.Options{})
	require.PanicsWithValue(t, f, func() { d.AdvanceWallClock(time.Second) })
	require.Contains(t, f.failed, "aborted")
	_, ok := topologytest.Get(d, s, "k")
	require.False(t, ok, "an aborted punctuation leaves no state")
}

// Count keeps what nodes counted in records that succeeded, not in a bad
// record's.
func TestDriverCountsEvents(t *testing.T) {
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	topology.Node(b, "n", func(c *topology.Call, r topology.Record[string, string]) error {
		c.Count("seen", 1)
		if r.Value == "bad" {
			return errors.New("bad")
		}
		return nil
	}, topology.Parents("in"))
	topo, err := b.Build()
	require.NoError(t, err)
	d := topologytest.New(t, topo, topologytest.Options{})
	in := topologytest.Input(d, "in", topology.String(), topology.String())
	in.Pipe("k", "a")
	in.Pipe("k", "bad")
	in.Pipe("k", "b")
	require.EqualValues(t, 2, d.Count("n", "seen"))
	require.Zero(t, d.Count("n", "other"))
	require.Len(t, d.DeadLetters(), 1)
}
