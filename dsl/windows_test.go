package dsl_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// winT0 is a time on a whole hour, so epoch-aligned windows start on it.
var winT0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func winAt(n int64) time.Time { return winT0.Add(time.Duration(n) * time.Millisecond) }

func twWin(start, end int64) topology.Window {
	return topology.Window{Start: winAt(start), End: winAt(end)}
}

var winKeySerde = topology.WindowedSerde(str)

// twOut is a windowed result as the tests compare them.
type twOut struct {
	Key    string
	Window topology.Window
	N      int64
	TS     time.Time
}

// windowedCount builds in -> WindowedBy(w, opts) -> Count -> out and
// returns a driver, the input and the output.
func windowedCount(t *testing.T, partitions int32, w dsl.Windows, opts ...dsl.WindowOpt) (*topologytest.Driver, topologytest.InputTopic[string, string], func() []twOut) {
	t.Helper()
	d := dsl.New(nil)
	g := dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str)
	dsl.WindowedBy(g, w, opts...).Count(dsl.Named("counts")).ToStream().To("out", winKeySerde, topology.Int64())
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{Partitions: partitions, Start: winT0})
	out := topologytest.Output(drv, "out", winKeySerde, topology.Int64())
	read := func() []twOut {
		var got []twOut
		for _, r := range out.ReadAll() {
			got = append(got, twOut{r.Key.Key, r.Key.Window, r.Value, r.Timestamp})
		}
		return got
	}
	return drv, topologytest.Input(drv, "in", str, str), read
}

func pipeWinAt(in topologytest.InputTopic[string, string], key string, at int64) {
	in.PipeRecord(topology.Record[string, string]{Key: key, Value: "v", Timestamp: winAt(at)})
}

// TestTumblingCountUpdates covers the on-update strategy of tumbling
// windows: every record emits its window's new count, timestamped as the
// record, and windows are aligned to the epoch (a record at 1500 ms is in
// [1000, 2000) of size 1 s, not in a window starting at the first record).
func TestTumblingCountUpdates(t *testing.T) {
	t.Parallel()
	_, in, read := windowedCount(t, 1, dsl.Tumbling(time.Second))
	pipeWinAt(in, "a", 1500)
	pipeWinAt(in, "a", 1999)
	pipeWinAt(in, "b", 1000)
	pipeWinAt(in, "a", 2000)
	require.Equal(t, []twOut{
		{"a", twWin(1000, 2000), 1, winAt(1500)},
		{"a", twWin(1000, 2000), 2, winAt(1999)},
		{"b", twWin(1000, 2000), 1, winAt(1000)},
		{"a", twWin(2000, 3000), 1, winAt(2000)},
	}, read())
}

// TestTumblingEmitFinal covers EmitFinal: nothing is winEmitted while a
// window is open; the record that moves stream time to the window's end
// emits its final value once, timestamped end - 1 ms; windows of all keys
// close, in end order.
func TestTumblingEmitFinal(t *testing.T) {
	t.Parallel()
	_, in, read := windowedCount(t, 1, dsl.Tumbling(time.Second), dsl.EmitFinal())
	pipeWinAt(in, "a", 100)
	pipeWinAt(in, "b", 900)
	pipeWinAt(in, "a", 999)
	require.Empty(t, read(), "open windows emit nothing")
	pipeWinAt(in, "a", 1000) // stream time reaches [0, 1000)'s end
	require.Equal(t, []twOut{
		{"a", twWin(0, 1000), 2, winAt(999)},
		{"b", twWin(0, 1000), 1, winAt(999)},
	}, read())
	pipeWinAt(in, "a", 5000)
	require.Equal(t, []twOut{{"a", twWin(1000, 2000), 1, winAt(1999)}}, read(), "each window once")
}

// TestHoppingWindows covers hopping windows: a record is in every window
// of size 1 s advancing by 400 ms that contains it (starts aligned to
// multiples of 400 ms since the epoch), and each closes on its own end.
func TestHoppingWindows(t *testing.T) {
	t.Parallel()
	_, in, read := windowedCount(t, 1, dsl.Hopping(time.Second, 400*time.Millisecond), dsl.EmitFinal())
	pipeWinAt(in, "a", 1000) // in [400,1400), [800,1800) (not [0,1000): ends are exclusive)
	pipeWinAt(in, "a", 1250) // in [400,1400), [800,1800), [1200,2200)
	pipeWinAt(in, "a", 3000)
	require.Equal(t, []twOut{
		{"a", twWin(400, 1400), 2, winAt(1399)},
		{"a", twWin(800, 1800), 2, winAt(1799)},
		{"a", twWin(1200, 2200), 1, winAt(2199)},
	}, read())
}

// TestGraceAndLate covers grace and the late policies: within grace an
// out-of-order record still updates its window; once stream time passes
// end + grace the window is closed, and a record only for it is late:
// dead-lettered with ErrLate by default, skipped with LateDrop.
func TestGraceAndLate(t *testing.T) {
	t.Parallel()
	for _, policy := range []dsl.LatePolicy{dsl.LateDeadLetter, dsl.LateDrop} {
		drv, in, read := windowedCount(t, 1, dsl.Tumbling(time.Second), dsl.Grace(500*time.Millisecond), dsl.EmitFinal(), dsl.Late(policy))
		pipeWinAt(in, "a", 900)
		pipeWinAt(in, "a", 1400) // stream time 1400 < 1000 + 500: [0,1000) is open
		pipeWinAt(in, "a", 800)  // out of order, within grace
		require.Empty(t, read())
		pipeWinAt(in, "a", 1500) // closes [0,1000)
		require.Equal(t, []twOut{{"a", twWin(0, 1000), 2, winAt(999)}}, read())
		pipeWinAt(in, "a", 700) // late
		require.Empty(t, read())
		if policy == dsl.LateDrop {
			require.Empty(t, drv.DeadLetters())
			require.EqualValues(t, 1, drv.Count("counts", dsl.EventLateDropped), "a dropped late record is counted")
			continue
		}
		require.Zero(t, drv.Count("counts", dsl.EventLateDropped))
		dl := drv.DeadLetters()
		require.Len(t, dl, 1)
		require.Equal(t, winAt(700), dl[0].Timestamp)
		pipeWinAt(in, "a", 9000)
		require.Equal(t, []twOut{{"a", twWin(1000, 2000), 2, winAt(1999)}}, read(), "the late record counted nowhere")
	}
}

// TestLateIsErrLate: the error a late record dead-letters with wraps
// ErrLate (through the processing error).
func TestLateIsErrLate(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	g := dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str)
	dsl.WindowedBy(g, dsl.Tumbling(time.Second)).Count(dsl.Named("c"))
	dr := newDriver(t, d)
	var err error
	for i, at := range []int64{5000, 100} {
		in := &topology.Input{Topic: "in", Offset: int64(i), Key: []byte("a"), Value: []byte("v"), Timestamp: winAt(at), StreamTime: winAt(5000)}
		err = dr.top.Dispatch(t.Context(), dr, in)
	}
	require.ErrorIs(t, err, dsl.ErrLate)
}

// TestCloseOnWallClock covers the wall-clock close: a partition that gets
// no more records still emits its last window once the wall clock passes
// end + grace + after; a record for that window arriving later is late
// (the mark closed it), though stream time alone would accept it.
func TestCloseOnWallClock(t *testing.T) {
	t.Parallel()
	drv, in, read := windowedCount(t, 1, dsl.Tumbling(time.Second), dsl.EmitFinal(), dsl.Grace(time.Second), dsl.CloseOnWallClock(10*time.Second))
	pipeWinAt(in, "a", 100) // window [0,1000); wall clock is at winT0
	for range 11 {          // the close runs every second (after/2, at most 1 s)
		drv.AdvanceWallClock(time.Second)
	}
	require.Empty(t, read(), "not before end + grace + after = 12 s")
	drv.AdvanceWallClock(time.Second)
	require.Equal(t, []twOut{{"a", twWin(0, 1000), 1, winAt(999)}}, read())
	drv.AdvanceWallClock(time.Hour)
	require.Empty(t, read(), "winEmitted once")
	pipeWinAt(in, "a", 200)
	require.Empty(t, read())
	require.Len(t, drv.DeadLetters(), 1, "late: the wall clock closed its window")
	pipeWinAt(in, "a", 1_000_000)
	require.Empty(t, read(), "the late record opened no window")
}

// TestWindowSpecErrors: bad window specs and options fail Build with a
// *BuildError naming the operator and wrapping ErrBadWindow.
func TestWindowSpecErrors(t *testing.T) {
	t.Parallel()
	bad := map[string]struct {
		w    dsl.Windows
		opts []dsl.WindowOpt
	}{
		"zero size":          {dsl.Tumbling(0), nil},
		"negative size":      {dsl.Tumbling(-time.Second), nil},
		"sub-millisecond":    {dsl.Tumbling(1500 * time.Microsecond), nil},
		"advance above size": {dsl.Hopping(time.Second, 2*time.Second), nil},
		"zero advance":       {dsl.Hopping(time.Second, 0), nil},
		"zero value":         {dsl.Windows{}, nil},
		"zero sliding":       {dsl.Sliding(0), nil},
		"sub-ms sliding":     {dsl.Sliding(time.Microsecond), nil},
		"negative grace":     {dsl.Tumbling(time.Second), []dsl.WindowOpt{dsl.Grace(-1)}},
		"negative retention": {dsl.Tumbling(time.Second), []dsl.WindowOpt{dsl.Retention(-1)}},
		"bad late policy":    {dsl.Tumbling(time.Second), []dsl.WindowOpt{dsl.Late(7)}},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			d := dsl.New(nil)
			g := dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str)
			dsl.WindowedBy(g, tc.w, append(tc.opts, dsl.WindowNamed("w"))...).Count()
			_, err := d.Build()
			require.ErrorIs(t, err, dsl.ErrBadWindow)
			var be *dsl.BuildError
			require.True(t, errors.As(err, &be))
			require.Equal(t, "w", be.Operator)
		})
	}
}

// TestWindowRetention covers the on-update strategy's expiry: a window
// stays in the store (queryable) until stream time passes its end plus
// retention, then is deleted; without Retention it goes once closed
// (end + grace). Read from the store's raw entries (tag 'w').
func TestWindowRetention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []dsl.WindowOpt
		// entries after records at 100, 3000, 6000 (ms)
		want []int
	}{
		{"retention 5s", []dsl.WindowOpt{dsl.Retention(5 * time.Second)}, []int{1, 2, 2}},
		{"default: grace", []dsl.WindowOpt{dsl.Grace(time.Second)}, []int{1, 1, 1}},
	} {
		d := dsl.New(nil)
		g := dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str)
		dsl.WindowedBy(g, dsl.Tumbling(time.Second), tc.opts...).Count(dsl.Named("c"))
		dr := newDriver(t, d)
		var stream time.Time
		for i, at := range []int64{100, 3000, 6000} {
			in := &topology.Input{Topic: "in", Offset: int64(i), Key: []byte("a"), Value: []byte("v"), Timestamp: winAt(at), StreamTime: stream}
			require.NoError(t, dr.top.Dispatch(t.Context(), dr, in))
			stream = winAt(at)
			n := 0
			for k := range dr.stores["c"] {
				if k[0] == 'w' {
					n++
				}
			}
			require.Equal(t, tc.want[i], n, "%s: windows stored after the record at %d ms", tc.name, at)
		}
	}
}

// TestWindowedSkipsNils: a record with a nil value updates no window, is
// not late and emits nothing, as in Count.
func TestWindowedSkipsNils(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	g := dsl.StreamFrom(d, "in", "in", str, topology.JSON[*amount]()).GroupByKey(str, topology.JSON[*amount]())
	dsl.WindowedBy(g, dsl.Tumbling(time.Second)).Count(dsl.Named("c")).ToStream().To("out", winKeySerde, topology.Int64())
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{Start: winT0})
	in := topologytest.Input(drv, "in", str, topology.JSON[*amount]())
	in.PipeRecord(topology.Record[string, *amount]{Key: "a", Value: &amount{1}, Timestamp: winAt(5000)})
	in.PipeRecord(topology.Record[string, *amount]{Key: "a", Value: nil, Timestamp: winAt(100)})
	in.PipeRecord(topology.Record[string, *amount]{Key: "a", Value: nil, Timestamp: winAt(5500)})
	require.Len(t, topologytest.Output(drv, "out", winKeySerde, topology.Int64()).ReadAll(), 1)
	require.Empty(t, drv.DeadLetters(), "a nil record is skipped, not late")
}

// WindowStoreOf hands out a windowed table's window store, to be read in a
// hand-written node or by a query; a table derived from it has none.
func TestWindowStoreOf(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	g := dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str)
	counts := dsl.WindowedBy(g, dsl.Tumbling(time.Second)).Count(dsl.Named("counts"))
	sessions := dsl.SessionWindowedBy(g, dsl.Session(time.Second), dsl.WindowNamed("sessions")).Count()
	ref, ok := dsl.WindowStoreOf(counts)
	require.True(t, ok)
	require.Equal(t, "counts", ref.Name())
	ref, ok = dsl.WindowStoreOf(sessions)
	require.True(t, ok)
	require.Equal(t, "sessions", ref.Name())
	_, ok = dsl.WindowStoreOf(counts.Filter(func(topology.Windowed[string], int64) bool { return true }))
	require.False(t, ok, "a derived table has no store")
	top, err := d.Build()
	require.NoError(t, err)
	require.True(t, top.IsWindowStore("counts"))
	require.True(t, top.IsWindowStore("sessions"))
}

// TestRepartitionedWindowsKeepTheirOwnStreamTime: stream time is per
// sub-topology. A record read before a repartition (a till's sale) moves
// only its own part's stream time, so it cannot close a window of the
// part after the repartition (the per-product minutes) in its task while
// the records it overtook are still on their way through the topic: a
// sale for product y at 5 s read from partition p, then a sale for
// product x (whose product partition is p) at 0.5 s, is not late. With one
// stream time per task it was: the second sale met windows closed by the
// first.
func TestRepartitionedWindowsKeepTheirOwnStreamTime(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	sales := dsl.StreamFrom(d, "sales", "sales", str, str) // till -> product
	byProduct := dsl.GroupBy(sales, func(_, product string) string { return product }, str, str, dsl.Named("by-product"))
	dsl.WindowedBy(byProduct, dsl.Tumbling(time.Second), dsl.EmitFinal()).Count(dsl.Named("counts")).ToStream().To("out", winKeySerde, topology.Int64())
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{Partitions: 2, Start: winT0})
	in := topologytest.Input(drv, "sales", str, str)
	// Two products in different partitions.
	x, y := "", ""
	for i := 0; x == "" || y == ""; i++ {
		k := string(rune('a' + i))
		switch drv.Partition([]byte(k)) {
		case 0:
			x = k
		case 1:
			y = k
		}
	}
	in.PipeTo(0, topology.Record[string, string]{Key: "till-1", Value: y, Timestamp: winAt(5000)})
	in.PipeTo(0, topology.Record[string, string]{Key: "till-1", Value: x, Timestamp: winAt(500)})
	require.Empty(t, drv.DeadLetters(), "x's sale is on time in its product's part: nothing there passed 1 s")
	require.Equal(t, winAt(5000), drv.StreamTime(0), "the task's stream time is still the largest of its parts'")
}
