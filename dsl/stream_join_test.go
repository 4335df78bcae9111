package dsl_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// ssRec is a stream-stream join output: key, value, timestamp (ms after
// joinT0) and the "id" header ("" for an unjoined record emitted when its
// window closed: those have no headers).
type ssRec struct {
	Key, Value string
	TS         int64
	ID         string
}

// ssPipe pipes one record, timestamped at joinT0 + ms, with header id.
func ssPipe(drv *topologytest.Driver, topic, key, value string, ms int64, id string) {
	topologytest.Input(drv, topic, str, str).PipeRecord(topology.Record[string, string]{Key: key, Value: value,
		Timestamp: time.UnixMilli(joinT0 + ms), Headers: []topology.Header{{Key: "id", Value: []byte(id)}}})
}

func ssRead(drv *topologytest.Driver, topic string) []ssRec {
	var got []ssRec
	for _, r := range topologytest.Output(drv, topic, str, str).ReadAll() {
		rec := ssRec{Key: r.Key, Value: r.Value, TS: r.Timestamp.UnixMilli() - joinT0}
		for _, h := range r.Headers {
			if h.Key == "id" {
				rec.ID = string(h.Value)
			}
		}
		got = append(got, rec)
	}
	return got
}

// ssJoiner and friends format results as "a+b", "-" for an absent side.
func ssJoiner(_, a, b string) string { return a + "+" + b }

func ssLeft(_, a, b string, found bool) string {
	if !found {
		b = "-"
	}
	return a + "+" + b
}

func ssOuter(_, a string, ok1 bool, b string, ok2 bool) string {
	if !ok1 {
		a = "-"
	}
	if !ok2 {
		b = "-"
	}
	return a + "+" + b
}

// TestStreamJoinInner: pairs within 10 ms are emitted when their second
// record arrives, timestamped the later of the two, headed as the second;
// duplicates (same key and timestamp) are all kept; other keys do not
// join; a record whose window end (t + 10 ms) is before stream time is
// late: dropped and counted, joining nothing.
func TestStreamJoinInner(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	a := dsl.StreamFrom(d, "a", "a", str, str)
	b := dsl.StreamFrom(d, "b", "b", str, str)
	dsl.StreamJoin(a, b, dsl.JoinTimeDifference(10*time.Millisecond), ssJoiner, str, str, str).To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{})

	ssPipe(drv, "a", "k1", "a1", 0, "1")
	ssPipe(drv, "a", "k1", "a1'", 0, "2") // a duplicate of a1's key and time
	require.Empty(t, ssRead(drv, "out"))
	ssPipe(drv, "b", "k1", "b1", 5, "3")
	require.Equal(t, []ssRec{{"k1", "a1+b1", 5, "3"}, {"k1", "a1'+b1", 5, "3"}}, ssRead(drv, "out"))
	ssPipe(drv, "b", "k1", "b2", 20, "4") // [10, 30]: no a
	require.Empty(t, ssRead(drv, "out"))
	ssPipe(drv, "a", "k1", "a2", 12, "5") // [2, 22]: b1 and b2, out of order
	require.Equal(t, []ssRec{{"k1", "a2+b1", 12, "5"}, {"k1", "a2+b2", 20, "5"}}, ssRead(drv, "out"))
	ssPipe(drv, "a", "k2", "x", 15, "6")
	require.Empty(t, ssRead(drv, "out"))
	ssPipe(drv, "a", "k1", "late", 9, "7") // 9 + 10 < 20: late
	require.Empty(t, ssRead(drv, "out"))
	require.Equal(t, int64(1), drv.Count("a-join-this", dsl.EventLateDropped))
	ssPipe(drv, "a", "k1", "a3", 10, "8") // 10 + 10 = 20: just in time
	require.Equal(t, []ssRec{{"k1", "a3+b1", 10, "8"}, {"k1", "a3+b2", 20, "8"}}, ssRead(drv, "out"))
	ssPipe(drv, "b", "k1", "late", 9, "9") // b's side too
	require.Empty(t, ssRead(drv, "out"))
	require.Equal(t, int64(1), drv.Count("a-join-other", dsl.EventLateDropped))
}

// TestStreamJoinBeforeAfter: After(10) with no before joins a record of a
// at t with records of b in [t, t + 10] only; the other side sees the
// same pairs.
func TestStreamJoinBeforeAfter(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	a := dsl.StreamFrom(d, "a", "a", str, str)
	b := dsl.StreamFrom(d, "b", "b", str, str)
	w := dsl.JoinTimeDifference(0).After(10 * time.Millisecond).Grace(100 * time.Millisecond)
	dsl.StreamJoin(a, b, w, ssJoiner, str, str, str).To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{})

	ssPipe(drv, "a", "k", "a1", 100, "1")
	ssPipe(drv, "b", "k", "b0", 95, "2")  // before a1: no
	ssPipe(drv, "b", "k", "b1", 110, "3") // a1 + 10: yes
	ssPipe(drv, "b", "k", "b2", 111, "4") // no
	ssPipe(drv, "a", "k", "a2", 96, "5")  // b in [96, 106]: none
	ssPipe(drv, "a", "k", "a3", 95, "6")  // b0 at 95
	ssPipe(drv, "a", "k", "a4", 101, "7") // b1 and b2... b2 is 10 after: yes, b1 too
	require.Equal(t, []ssRec{
		{"k", "a1+b1", 110, "3"},
		{"k", "a3+b0", 95, "6"},
		{"k", "a4+b1", 110, "7"}, {"k", "a4+b2", 111, "7"},
	}, ssRead(drv, "out"))
}

// TestStreamLeftJoin: a record of a without a partner is emitted (b
// absent, its own timestamp, no headers) only when stream time passes its
// window end plus grace, and not at all if a partner arrives first, even
// out of order within grace; a late record is dropped.
func TestStreamLeftJoin(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	a := dsl.StreamFrom(d, "a", "a", str, str)
	b := dsl.StreamFrom(d, "b", "b", str, str)
	w := dsl.JoinTimeDifference(10 * time.Millisecond).Grace(5 * time.Millisecond)
	dsl.StreamLeftJoin(a, b, w, ssLeft, str, str, str).To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{})

	ssPipe(drv, "a", "k1", "a1", 0, "1")
	ssPipe(drv, "a", "k1", "a2", 15, "2") // 0 + 10 + 5 = 15: a1 not closed yet
	require.Empty(t, ssRead(drv, "out"))
	ssPipe(drv, "a", "k1", "a3", 100, "3") // closes a1 and a2
	require.Equal(t, []ssRec{{"k1", "a1+-", 0, ""}, {"k1", "a2+-", 15, ""}}, ssRead(drv, "out"))
	ssPipe(drv, "b", "k1", "b1", 95, "4") // out of order, within grace: joins a3
	require.Equal(t, []ssRec{{"k1", "a3+b1", 100, "4"}}, ssRead(drv, "out"))
	ssPipe(drv, "b", "k1", "b2", 200, "5") // a3 closes, joined: nothing; b alone is never emitted
	require.Empty(t, ssRead(drv, "out"))
	ssPipe(drv, "a", "k1", "a4", 185, "6") // 185 + 10 + 5 = 200: not late; [175, 195] has no b
	ssPipe(drv, "a", "k1", "late", 184, "7")
	require.Equal(t, int64(1), drv.Count("a-left-join-this", dsl.EventLateDropped))
	require.Empty(t, ssRead(drv, "out"))
	ssPipe(drv, "a", "k2", "z", 201, "8") // 201 > 200: a4 closes
	require.Equal(t, []ssRec{{"k1", "a4+-", 185, ""}}, ssRead(drv, "out"))
}

// TestStreamLeftJoinAfterUnjoined: the documented case giving both an
// unjoined record and a pair with it: an out-of-order record of b, not
// late (its own window end is ahead), joins a record of a whose window
// closed already.
func TestStreamLeftJoinAfterUnjoined(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	a := dsl.StreamFrom(d, "a", "a", str, str)
	b := dsl.StreamFrom(d, "b", "b", str, str)
	dsl.StreamLeftJoin(a, b, dsl.JoinTimeDifference(10*time.Millisecond), ssLeft, str, str, str).To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{})
	ssPipe(drv, "a", "k1", "a1", 0, "1")
	ssPipe(drv, "a", "k2", "x", 11, "2") // 0 + 10 < 11: a1 closes
	ssPipe(drv, "b", "k1", "b1", 5, "3") // 5 + 10 >= 11: not late
	require.Equal(t, []ssRec{{"k1", "a1+-", 0, ""}, {"k1", "a1+b1", 5, "3"}}, ssRead(drv, "out"))
}

// TestStreamOuterJoin: unjoined records of either side are emitted when
// their window closes, unless joined before.
func TestStreamOuterJoin(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	a := dsl.StreamFrom(d, "a", "a", str, str)
	b := dsl.StreamFrom(d, "b", "b", str, str)
	dsl.StreamOuterJoin(a, b, dsl.JoinTimeDifference(10*time.Millisecond), ssOuter, str, str, str).To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{})

	ssPipe(drv, "a", "k1", "a1", 0, "1")
	ssPipe(drv, "b", "k1", "b1", 30, "2")
	require.Equal(t, []ssRec{{"k1", "a1+-", 0, ""}}, ssRead(drv, "out"))
	ssPipe(drv, "b", "k1", "b2", 31, "3")
	ssPipe(drv, "a", "k1", "a2", 35, "4")
	require.Equal(t, []ssRec{{"k1", "a2+b1", 35, "4"}, {"k1", "a2+b2", 35, "4"}}, ssRead(drv, "out"))
	ssPipe(drv, "b", "k2", "c1", 50, "5") // closes b1, b2, a2: all joined
	require.Empty(t, ssRead(drv, "out"))
	ssPipe(drv, "a", "k3", "d1", 61, "6")
	require.Equal(t, []ssRec{{"k2", "-+c1", 50, ""}}, ssRead(drv, "out"))
}

// TestStreamSelfJoin: a stream joined with itself gives, as in Kafka
// Streams, each pair of records within the window in both orders, when
// the second arrives, and each record with itself; an outer self-join
// has no unjoined records.
func TestStreamSelfJoin(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	a := dsl.StreamFrom(d, "a", "a", str, str)
	dsl.StreamOuterJoin(a, a, dsl.JoinTimeDifference(10*time.Millisecond), ssOuter, str, str, str).To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{})
	ssPipe(drv, "a", "k", "x", 0, "1")
	require.Equal(t, []ssRec{{"k", "x+x", 0, "1"}}, ssRead(drv, "out"))
	ssPipe(drv, "a", "k", "y", 5, "2")
	require.Equal(t, []ssRec{{"k", "y+x", 5, "2"}, {"k", "x+y", 5, "2"}, {"k", "y+y", 5, "2"}}, ssRead(drv, "out"))
	ssPipe(drv, "a", "k", "z", 100, "3")
	require.Equal(t, []ssRec{{"k", "z+z", 100, "3"}}, ssRead(drv, "out"))
}

// TestStreamJoinNils: records with a nil value join nothing; one with a
// nil key joins nothing either, but an outer side's is emitted as
// unjoined at once (KIP-962), headed as itself.
func TestStreamJoinNils(t *testing.T) {
	t.Parallel()
	bs := topology.Bytes()
	d := dsl.New(nil)
	a := dsl.StreamFrom(d, "a", "a", bs, bs)
	b := dsl.StreamFrom(d, "b", "b", bs, bs)
	w := dsl.JoinTimeDifference(10 * time.Millisecond)
	show := func(v []byte, ok bool) string {
		if !ok {
			return "-"
		}
		if v == nil {
			return "nil"
		}
		return string(v)
	}
	j := func(_, x []byte, ok1 bool, y []byte, ok2 bool) []byte {
		return []byte(show(x, ok1) + "+" + show(y, ok2))
	}
	dsl.StreamJoin(a, b, w, func(k, x, y []byte) []byte { return j(k, x, true, y, true) }, bs, bs, bs).To("inner", bs, bs)
	dsl.StreamLeftJoin(a, b, w, func(k, x, y []byte, ok bool) []byte { return j(k, x, true, y, ok) }, bs, bs, bs).To("left", bs, bs)
	dsl.StreamOuterJoin(a, b, w, j, bs, bs, bs).To("outer", bs, bs)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{})
	pipe := func(topic string, k, v []byte, ms int64) {
		topologytest.Input(drv, topic, bs, bs).PipeTo(0, topology.Record[[]byte, []byte]{Key: k, Value: v, Timestamp: time.UnixMilli(joinT0 + ms)})
	}
	read := func(topic string) []string {
		var got []string
		for _, r := range topologytest.Output(drv, topic, bs, bs).ReadAll() {
			got = append(got, fmt.Sprintf("%s=%s@%d", show(r.Key, true), r.Value, r.Timestamp.UnixMilli()-joinT0))
		}
		return got
	}
	pipe("a", []byte("k"), nil, 0) // nil value: nothing, not buffered
	pipe("b", []byte("k"), nil, 1)
	pipe("a", nil, []byte("x"), 2) // nil key
	pipe("b", nil, []byte("y"), 3)
	pipe("a", []byte("k"), []byte("v"), 4)
	pipe("b", []byte("k"), []byte("w"), 5)
	require.Equal(t, []string{"k=v+w@5"}, read("inner"))
	require.Equal(t, []string{"nil=x+-@2", "k=v+w@5"}, read("left"))
	require.Equal(t, []string{"nil=x+-@2", "nil=-+y@3", "k=v+w@5"}, read("outer"))
	pipe("a", []byte("z"), []byte("z"), 100)
	require.Empty(t, read("inner"))
	require.Empty(t, read("left"))
	require.Empty(t, read("outer"))
}

// TestStreamJoinBuildErrors: bad windows, re-keyed streams and
// RequireNames fail the build; derived names.
func TestStreamJoinBuildErrors(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, w := range []dsl.JoinWindows{
		dsl.JoinTimeDifference(-ms), dsl.JoinTimeDifference(ms).Before(-ms), dsl.JoinTimeDifference(ms).After(-ms),
		dsl.JoinTimeDifference(ms).Grace(-ms), dsl.JoinTimeDifference(time.Microsecond),
	} {
		d := dsl.New(nil)
		a := dsl.StreamFrom(d, "a", "a", str, str)
		b := dsl.StreamFrom(d, "b", "b", str, str)
		dsl.StreamJoin(a, b, w, ssJoiner, str, str, str).To("out", str, str)
		be := joinBuildError(t, d)
		require.ErrorIs(t, be, dsl.ErrBadWindow, "%+v", w)
		require.Equal(t, "a-join", be.Operator)
	}

	d := dsl.New(nil)
	a := dsl.StreamFrom(d, "a", "a", str, str)
	b := dsl.StreamFrom(d, "b", "b", str, str)
	rekeyed := dsl.SelectKey(b, func(_, v string) string { return v })
	dsl.StreamLeftJoin(a, rekeyed, dsl.JoinTimeDifference(ms), ssLeft, str, str, str).To("out", str, str)
	// A re-keyed side is repartitioned with the join's serdes first.
	topo, err := d.Build()
	require.NoError(t, err)
	var names []string
	for _, r := range topo.Repartitions() {
		names = append(names, r.Name)
	}
	require.Equal(t, []string{"a-left-join-other-repartition"}, names)

	d = dsl.New(nil, dsl.RequireNames())
	a = dsl.StreamFrom(d, "a", "a", str, str)
	b = dsl.StreamFrom(d, "b", "b", str, str)
	dsl.StreamJoin(a, b, dsl.JoinTimeDifference(ms), ssJoiner, str, str, str).To("out", str, str)
	require.ErrorIs(t, joinBuildError(t, d), dsl.ErrNameRequired)
	d = dsl.New(nil, dsl.RequireNames())
	a = dsl.StreamFrom(d, "a", "a", str, str)
	b = dsl.StreamFrom(d, "b", "b", str, str)
	dsl.StreamJoin(a, b, dsl.JoinTimeDifference(ms), ssJoiner, str, str, str, dsl.Named("pairs")).To("out", str, str)
	_, err = d.Build()
	require.NoError(t, err)
}

// TestStreamJoinExpiry: a buffered record is deleted from its store once
// stream time passes its timestamp plus before, after and grace, not
// before; unjoined ones are emitted first. Runs Dispatch directly to see
// the stores.
func TestStreamJoinExpiry(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	a := dsl.StreamFrom(d, "a", "a", str, str)
	b := dsl.StreamFrom(d, "b", "b", str, str)
	w := dsl.JoinTimeDifference(10 * time.Millisecond).After(20 * time.Millisecond).Grace(5 * time.Millisecond)
	dsl.StreamOuterJoin(a, b, w, ssOuter, str, str, str, dsl.Named("j")).To("out", str, str)
	dr := newDriver(t, d)
	var st time.Time
	pipe := func(topic, key, value string, ms int64) {
		t.Helper()
		ts := time.UnixMilli(joinT0 + ms)
		dr.offset++
		in := &topology.Input{Topic: topic, Offset: dr.offset, Key: []byte(key), Value: []byte(value), Timestamp: ts, StreamTime: st}
		require.NoError(t, dr.top.Dispatch(context.Background(), dr, in))
		if ts.After(st) {
			st = ts
		}
	}
	entries := func(store string) int {
		n := 0
		for k := range dr.stores[store] {
			if k[0] == 'w' {
				n++
			}
		}
		return n
	}
	pipe("a", "k", "a1", 0) // end 20, expires after 0 + 10 + 20 + 5 = 35
	pipe("b", "k", "b1", 0) // end 10, the same
	require.Equal(t, 1, entries("j-this-store"))
	require.Equal(t, 1, entries("j-other-store"))
	pipe("a", "x", "x", 35)
	require.Equal(t, 2, entries("j-this-store"))
	require.Equal(t, 1, entries("j-other-store"))
	pipe("a", "x", "y", 36)
	require.Equal(t, 2, entries("j-this-store")) // x@35, x@36
	require.Equal(t, 0, entries("j-other-store"))
	require.Equal(t, []out{{"out", "k", "a1+b1"}}, dr.take())
	pipe("b", "z", "z", 100) // x and y close (36 + 20 + 5 < 100) and expire
	require.Equal(t, 0, entries("j-this-store"))
	require.Equal(t, []out{{"out", "x", "x+-"}, {"out", "x", "y+-"}}, dr.take())
}
