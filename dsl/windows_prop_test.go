package dsl_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// winCase is one random scenario of the windowed property test.
type winCase struct {
	size, advance, grace int64 // milliseconds
	final                bool
	drop                 bool // LateDrop, else LateDeadLetter
	partitions           int32
	recs                 []winRec
}

type winRec struct {
	key string
	at  int64 // Unix milliseconds
}

// winEmitted is one windowed result: key, window start and end (Unix ms),
// value (the ids of the records folded in, in order), timestamp.
type winEmitted struct {
	key        string
	start, end int64
	ids        string
	ts         int64
}

// refWinFold is the reference: a brute-force fold written apart from the
// operator. Per partition it keeps stream time and the open windows
// (key, start) -> ids; a record goes to every window of the spec that
// contains it (enumerated downwards from the last start at or before
// it) and is still open given the stream time when it arrives (this
// record included); it is late when none is. After a record, every
// window whose end + grace <= stream time closes: with final it is
// winEmitted, in order of end, then key, then start.
func refWinFold(pc winCase, part func(string) int32) (out []winEmitted, late []int) {
	type wk struct {
		key   string
		start int64
	}
	stream := make([]int64, pc.partitions)
	for i := range stream {
		stream[i] = -1 << 62
	}
	open := make([]map[wk]string, pc.partitions)
	for i := range open {
		open[i] = make(map[wk]string)
	}
	for id, r := range pc.recs {
		p := part(r.key)
		st := max(stream[p], r.at)
		var starts []int64
		for s := r.at / pc.advance * pc.advance; s > r.at-pc.size; s -= pc.advance {
			if s+pc.size+pc.grace > st {
				starts = append(starts, s)
			}
		}
		if len(starts) == 0 {
			late = append(late, id)
			continue // a bad record: stream time stays
		}
		stream[p] = st
		slices.Sort(starts)
		for _, s := range starts {
			k := wk{r.key, s}
			open[p][k] += strconv.Itoa(id) + ";"
			if !pc.final {
				out = append(out, winEmitted{r.key, s, s + pc.size, open[p][k], r.at})
			}
		}
		var closed []wk
		for k := range open[p] {
			if k.start+pc.size+pc.grace <= st {
				closed = append(closed, k)
			}
		}
		slices.SortFunc(closed, func(a, b wk) int {
			return cmp.Or(cmp.Compare(a.start+pc.size, b.start+pc.size), cmp.Compare(a.key, b.key), cmp.Compare(a.start, b.start))
		})
		for _, k := range closed {
			if pc.final {
				end := k.start + pc.size
				out = append(out, winEmitted{k.key, k.start, end, open[p][k], end - 1})
			}
			delete(open[p], k)
		}
	}
	return out, late
}

func randWinCase(rng *rand.Rand) winCase {
	pc := winCase{
		size:       1 + rng.Int64N(30),
		grace:      rng.Int64N(40),
		final:      rng.IntN(2) == 0,
		drop:       rng.IntN(2) == 0,
		partitions: 1 + rng.Int32N(3),
	}
	pc.advance = pc.size // tumbling
	if rng.IntN(2) == 0 {
		pc.advance = 1 + rng.Int64N(pc.size) // hopping
	}
	// Timestamps drift forwards with out-of-order jumps back, some far
	// enough to be late; they start on a random offset from the epoch.
	cur := winT0.UnixMilli() + rng.Int64N(1000)
	n := 20 + rng.IntN(120)
	nkeys := 1 + rng.IntN(6)
	for range n {
		cur += rng.Int64N(8)
		at := cur
		if rng.IntN(4) == 0 {
			at -= rng.Int64N(80)
		}
		pc.recs = append(pc.recs, winRec{key: "k" + strconv.Itoa(rng.IntN(nkeys)), at: at})
	}
	return pc
}

// runWinCase runs pc through the operator (a windowed Reduce that
// concatenates record ids) on the test driver, each record a transaction,
// and returns what it winEmitted and the ids of the dead-lettered records.
func runWinCase(t *testing.T, pc winCase) (*topologytest.Driver, []winEmitted, []int) {
	t.Helper()
	d := dsl.New(nil)
	g := dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str)
	opts := []dsl.WindowOpt{dsl.Grace(time.Duration(pc.grace) * time.Millisecond)}
	if pc.final {
		opts = append(opts, dsl.EmitFinal())
	}
	if pc.drop {
		opts = append(opts, dsl.Late(dsl.LateDrop))
	}
	w := dsl.Hopping(time.Duration(pc.size)*time.Millisecond, time.Duration(pc.advance)*time.Millisecond)
	dsl.WindowedBy(g, w, opts...).Reduce(func(agg, v string) string { return agg + v }, dsl.Named("ids")).
		ToStream().To("out", winKeySerde, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{Partitions: pc.partitions, Start: winT0})
	in := topologytest.Input(drv, "in", str, str)
	for id, r := range pc.recs {
		in.PipeRecord(topology.Record[string, string]{Key: r.key, Value: strconv.Itoa(id) + ";", Timestamp: time.UnixMilli(r.at)})
	}
	var got []winEmitted
	for _, r := range topologytest.Output(drv, "out", winKeySerde, str).ReadAll() {
		got = append(got, winEmitted{r.Key.Key, r.Key.Window.Start.UnixMilli(), r.Key.Window.End.UnixMilli(), r.Value, r.Timestamp.UnixMilli()})
	}
	var dead []int
	for _, r := range drv.DeadLetters() {
		id, err := strconv.Atoi(strings.TrimSuffix(string(r.Value), ";"))
		require.NoError(t, err)
		dead = append(dead, id)
	}
	return drv, got, dead
}

// TestWindowedProperty compares the operator with the reference fold on
// random scenarios: tumbling and hopping windows of random size and
// advance, random grace, both emit strategies, both late policies, one
// to three partitions, random keys and timestamps with out-of-order and
// late records. The winEmitted sequence (keys, windows, values, timestamps,
// order) must equal the reference's. With EmitFinal it also checks, apart
// from the reference, that no window is winEmitted twice and that, after a
// flush record per partition closes every window, each record is in the
// final of every window it was accepted into: exactly the windows that
// contain it and were open when it arrived.
func TestWindowedProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(19, 1))
	for i := range 100 {
		pc := randWinCase(rng)
		name := fmt.Sprintf("case%d/size=%d,advance=%d,grace=%d,final=%t,drop=%t,partitions=%d",
			i, pc.size, pc.advance, pc.grace, pc.final, pc.drop, pc.partitions)
		if pc.final {
			pc.recs = append(pc.recs, winFlushRecs(t, pc)...)
		}
		drv, got, dead := runWinCase(t, pc)
		want, late := refWinFold(pc, func(k string) int32 { return drv.Partition([]byte(k)) })
		require.Equal(t, want, got, name)
		if pc.drop {
			require.Empty(t, dead, name)
		} else {
			require.Equal(t, late, dead, name)
		}
		if pc.final {
			checkWinFinals(t, name, pc, got, late)
		}
	}
}

// winFlushRecs returns, per partition, a record far after every other, so
// that every earlier window closes. Its keys are found by trying names.
func winFlushRecs(t *testing.T, pc winCase) []winRec {
	t.Helper()
	d := dsl.New(nil)
	dsl.StreamFrom(d, "in", "in", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{Partitions: pc.partitions})
	last := slices.MaxFunc(pc.recs, func(a, b winRec) int { return cmp.Compare(a.at, b.at) }).at
	var out []winRec
	seen := make(map[int32]bool)
	for i := 0; len(seen) < int(pc.partitions); i++ {
		k := "f" + strconv.Itoa(i)
		if p := drv.Partition([]byte(k)); !seen[p] {
			seen[p] = true
			out = append(out, winRec{key: k, at: last + 10*(pc.size+pc.grace) + 1000})
		}
	}
	return out
}

// checkWinFinals checks EmitFinal's invariants without the reference.
func checkWinFinals(t *testing.T, name string, pc winCase, got []winEmitted, late []int) {
	t.Helper()
	type wk struct {
		key   string
		start int64
	}
	in := make(map[int][]wk) // record id -> the windows whose final has it
	seen := make(map[wk]bool)
	for _, e := range got {
		k := wk{e.key, e.start}
		require.False(t, seen[k], "%s: window %v winEmitted twice", name, k)
		seen[k] = true
		require.Equal(t, e.end-1, e.ts, name)
		for id := range strings.SplitSeq(strings.TrimSuffix(e.ids, ";"), ";") {
			n, err := strconv.Atoi(id)
			require.NoError(t, err)
			in[n] = append(in[n], k)
		}
	}
	nflush := int(pc.partitions)
	for id, r := range pc.recs[:len(pc.recs)-nflush] {
		if slices.Contains(late, id) {
			require.Empty(t, in[id], "%s: late record %d folded in", name, id)
			continue
		}
		require.NotEmpty(t, in[id], "%s: record %d in no final", name, id)
		for _, k := range in[id] {
			require.Equal(t, r.key, k.key, name)
			require.True(t, k.start <= r.at && r.at < k.start+pc.size, "%s: record %d at %d in window %v", name, id, r.at, k)
			require.Zero(t, k.start%pc.advance, "%s: window %v not aligned", name, k)
		}
	}
}
