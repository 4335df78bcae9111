package dsl_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// slidingRef is the reference fold of sliding windows, from their
// definition: over the records accepted so far, a key's windows are
// [r-d, r] for each record r and [r+1, r+1+d] for each record r with
// another in (r, r+d+1]. A window that is already closed (start + d + 1 +
// grace <= stream time) when it first exists never exists; a record is
// late when a window starting at its own timestamp would be closed. When a
// window closes, its final value is the accepted records in it, in time
// order (arrival order within a millisecond).
func slidingRef(pc winCase, part func(string) int32) (finals []winEmitted, late []int) {
	type acc struct {
		at int64
		id int
	}
	type wk struct {
		key   string
		start int64
	}
	d, g := pc.size, pc.grace
	stream := make(map[int32]int64)
	accepted := make(map[string][]acc)
	state := make(map[wk]int) // 1 open, 2 emitted or dead
	for id, r := range pc.recs {
		p := part(r.key)
		st, seen := stream[p]
		if !seen {
			st = -1 << 62
		}
		st = max(st, r.at)
		closed := func(s int64) bool { return s+d+1+g <= st }
		if closed(r.at) {
			late = append(late, id)
			continue
		}
		stream[p] = st
		accepted[r.key] = append(accepted[r.key], acc{r.at, id})
		recs := accepted[r.key]
		for _, a := range recs {
			defined := []int64{a.at - d}
			for _, b := range recs {
				if b.at > a.at && b.at <= a.at+d+1 {
					defined = append(defined, a.at+1)
					break
				}
			}
			for _, s := range defined {
				if k := (wk{r.key, s}); state[k] == 0 {
					state[k] = 1
					if closed(s) {
						state[k] = 2
					}
				}
			}
		}
		var closing []wk
		for k, s := range state {
			if s == 1 && closed(k.start) && part(k.key) == p {
				closing = append(closing, k)
			}
		}
		slices.SortFunc(closing, func(a, b wk) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.key, b.key)) })
		for _, k := range closing {
			state[k] = 2
			in := slices.DeleteFunc(slices.Clone(accepted[k.key]), func(a acc) bool { return a.at < k.start || a.at > k.start+d })
			slices.SortStableFunc(in, func(a, b acc) int { return cmp.Compare(a.at, b.at) })
			var ids string
			for _, a := range in {
				ids += strconv.Itoa(a.id) + ";"
			}
			finals = append(finals, winEmitted{k.key, k.start, k.start + d + 1, ids, k.start + d})
		}
	}
	return finals, late
}

// TestSlidingProperty compares sliding windows with the reference on
// random scenarios (random max difference, grace, keys, one to three
// partitions, out-of-order and late records, both late policies). With
// EmitFinal the emitted sequence must equal the reference's finals; on
// updates, each window's last update must be the reference's final value
// and no other window may be updated. A flush record per partition closes
// every window at the end.
func TestSlidingProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(19, 3))
	for i := range 80 {
		pc := randWinCase(rng)
		pc.advance = pc.size
		pc.recs = append(pc.recs, winFlushRecs(t, pc)...)
		name := fmt.Sprintf("case%d/d=%d,grace=%d,final=%t,drop=%t,partitions=%d", i, pc.size, pc.grace, pc.final, pc.drop, pc.partitions)
		drv, got, dead := runSliding(t, pc)
		want, late := slidingRef(pc, func(k string) int32 { return drv.Partition([]byte(k)) })
		if pc.drop {
			require.Empty(t, dead, name)
		} else {
			require.Equal(t, late, dead, name)
		}
		if pc.final {
			require.Equal(t, want, got, name)
			continue
		}
		last := make(map[string]string)
		for _, e := range got {
			last[fmt.Sprintf("%s@%d-%d", e.key, e.start, e.end)] = e.ids
		}
		wantLast := make(map[string]string)
		for _, e := range want {
			wantLast[fmt.Sprintf("%s@%d-%d", e.key, e.start, e.end)] = e.ids
		}
		for k := range last { // the flush records' own windows stay open
			if k[0] == 'f' {
				delete(last, k)
			}
		}
		require.Equal(t, wantLast, last, name)
	}
}

func runSliding(t *testing.T, pc winCase) (*topologytest.Driver, []winEmitted, []int) {
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
	dsl.WindowedBy(g, dsl.Sliding(time.Duration(pc.size)*time.Millisecond), opts...).
		Reduce(func(agg, v string) string { return agg + v }, dsl.Named("ids")).ToStream().To("out", winKeySerde, str)
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
		id, err := strconv.Atoi(string(r.Value[:len(r.Value)-1]))
		require.NoError(t, err)
		dead = append(dead, id)
	}
	return drv, got, dead
}

// TestSlidingWindowsExample shows which windows sliding windows make:
// with max difference 10 ms and records at 10, 15 and 30 ms, the left
// windows [0,10], [5,15], [20,30] (each ending on a record), and the right
// window [11,21] of the record at 10 (the record at 15 is within reach);
// the record at 15 has no right window (nothing follows within 11 ms).
// Bounds are inclusive: a topology.Window's End is the last ms + 1. (The
// grace lets the record at 10 in after the one at 15.)
func TestSlidingWindowsExample(t *testing.T) {
	t.Parallel()
	_, in, read := windowedCount(t, 1, dsl.Sliding(10*time.Millisecond), dsl.EmitFinal(), dsl.Grace(10*time.Millisecond))
	pipeWinAt(in, "a", 15) // out of order: 10 comes after 15
	pipeWinAt(in, "a", 10)
	pipeWinAt(in, "a", 30)
	pipeWinAt(in, "a", 1000)
	require.Equal(t, []twOut{
		{"a", twWin(0, 11), 1, winAt(10)},
		{"a", twWin(5, 16), 2, winAt(15)},
		{"a", twWin(11, 22), 1, winAt(21)},
		{"a", twWin(20, 31), 1, winAt(30)},
	}, read())
}

// TestSlidingCloseOnWallClock: the wall-clock close works for sliding
// windows too (their ends are not on a grid): the record's left window
// [-900, 100] ms closes once the wall clock passes its end (101 ms) plus
// grace plus after, and a record for it after that is late.
func TestSlidingCloseOnWallClock(t *testing.T) {
	t.Parallel()
	drv, in, read := windowedCount(t, 1, dsl.Sliding(time.Second), dsl.EmitFinal(), dsl.Grace(time.Second), dsl.CloseOnWallClock(10*time.Second))
	pipeWinAt(in, "a", 100)
	for range 11 {
		drv.AdvanceWallClock(time.Second)
	}
	require.Empty(t, read(), "not before 101 ms + 1 s + 10 s")
	drv.AdvanceWallClock(time.Second)
	require.Equal(t, []twOut{{"a", twWin(-900, 101), 1, winAt(100)}}, read())
	drv.AdvanceWallClock(time.Hour)
	pipeWinAt(in, "a", 200)
	require.Empty(t, read())
	require.Len(t, drv.DeadLetters(), 1)
}
