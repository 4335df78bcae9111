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
	"github.com/exactly-stream/exactly/topologytest"
)

// ssEvent is one piped record of a stream-stream join scenario.
type ssEvent struct {
	a     bool // topic a (else b)
	key   string
	value string
	ts    int64 // ms after joinT0
}

func (e ssEvent) String() string {
	side := "b"
	if e.a {
		side = "a"
	}
	return fmt.Sprintf("%s:%s=%s@%d", side, e.key, e.value, e.ts)
}

// randSSEvents returns 5 to 40 events on both sides over nkeys keys, with
// stream time moving forward by 0 to 8 ms per event and timestamps often
// behind it: by up to 6 ms (usually within grace) or, now and then, by up
// to 40 (often late).
func randSSEvents(rng *rand.Rand, nkeys int) []ssEvent {
	n := 5 + rng.IntN(36)
	var evs []ssEvent
	var now int64
	for i := range n {
		now += rng.Int64N(9)
		ts := now
		switch rng.IntN(6) {
		case 0, 1:
			ts -= rng.Int64N(7)
		case 2:
			ts -= rng.Int64N(41)
		}
		evs = append(evs, ssEvent{a: rng.IntN(2) == 0, key: "k" + strconv.Itoa(rng.IntN(nkeys)), value: "v" + strconv.Itoa(i), ts: ts})
	}
	return evs
}

// ssBuffered is a record the reference holds: every record that was not
// late, forever (a brute force: it never expires any).
type ssBuffered struct {
	ssEvent
	seq    int // pipe index
	joined bool
	closed bool // its window end plus grace is before stream time
}

// ssReference computes, per piped event, the outputs of the inner, left
// and outer joins under Kafka Streams' semantics, with the stream time of
// each partition (the largest timestamp piped into it, as the driver
// keeps it), and the late records per side. Within one event, outputs
// come as the join emits them: the pairs with the new record, in the
// other side's timestamp order (then arrival); then the records of a
// whose window closed (in order of window end, key, timestamp, arrival),
// then those of b.
func ssReference(evs []ssEvent, part func(key string) int32, before, after, grace int64) (inner, left, outer [][]ssRec, lateA, lateB int64) {
	st := make(map[int32]int64)
	seen := make(map[int32]bool)
	var buf []*ssBuffered
	reach := func(a bool) int64 {
		if a {
			return after
		}
		return before
	}
	for i, e := range evs {
		p := part(e.key)
		if !seen[p] || e.ts > st[p] {
			st[p], seen[p] = e.ts, true
		}
		var in, l, o []ssRec
		if e.ts+reach(e.a)+grace < st[p] {
			if e.a {
				lateA++
			} else {
				lateB++
			}
		} else {
			me := &ssBuffered{ssEvent: e, seq: i}
			var partners []*ssBuffered
			for _, x := range buf {
				if x.a != e.a && x.key == e.key && x.ts >= e.ts-reach(!e.a) && x.ts <= e.ts+reach(e.a) {
					partners = append(partners, x)
				}
			}
			slices.SortStableFunc(partners, func(x, y *ssBuffered) int { return cmp.Compare(x.ts, y.ts) })
			id := strconv.Itoa(i)
			for _, x := range partners {
				x.joined, me.joined = true, true
				va, vb := e.value, x.value
				if !e.a {
					va, vb = vb, va
				}
				r := ssRec{Key: e.key, Value: va + "+" + vb, TS: max(e.ts, x.ts), ID: id}
				in, l, o = append(in, r), append(l, r), append(o, r)
			}
			buf = append(buf, me)
		}
		// Close what stream time passed, in partition p.
		for _, side := range []bool{true, false} {
			var closing []*ssBuffered
			for _, x := range buf {
				if x.a == side && !x.closed && part(x.key) == p && x.ts+reach(side)+grace < st[p] {
					closing = append(closing, x)
				}
			}
			slices.SortStableFunc(closing, func(x, y *ssBuffered) int {
				return cmp.Or(cmp.Compare(x.ts+reach(side), y.ts+reach(side)), cmp.Compare(x.key, y.key), cmp.Compare(x.ts, y.ts))
			})
			for _, x := range closing {
				x.closed = true
				if x.joined {
					continue
				}
				if side {
					r := ssRec{Key: x.key, Value: x.value + "+-", TS: x.ts}
					l, o = append(l, r), append(o, r)
				} else {
					o = append(o, ssRec{Key: x.key, Value: "-+" + x.value, TS: x.ts})
				}
			}
		}
		inner, left, outer = append(inner, in), append(left, l), append(outer, o)
	}
	return inner, left, outer, lateA, lateB
}

// TestStreamJoinProperty compares StreamJoin, StreamLeftJoin and
// StreamOuterJoin with a brute-force reference (ssReference) on random
// scenarios: one to three partitions, one to three keys, random before,
// after and grace (0 to 10 ms), records on both sides in random order
// with timestamps in order, out of order within grace, and late. Each
// event is piped alone; the outputs it caused (keys, values, timestamps,
// headers, order) must be the reference's, and the late records dropped
// per side its count.
func TestStreamJoinProperty(t *testing.T) {
	t.Parallel()
	seed := joinSeed(t)
	rng := rand.New(rand.NewPCG(seed, 13))
	for i := range 120 {
		parts := 1 + rng.Int32N(3)
		before, after, grace := rng.Int64N(11), rng.Int64N(11), rng.Int64N(11)
		evs := randSSEvents(rng, 1+rng.IntN(3))
		name := fmt.Sprintf("seed %d case %d partitions=%d before=%d after=%d grace=%d events=%v", seed, i, parts, before, after, grace, evs)

		d := dsl.New(nil)
		a := dsl.StreamFrom(d, "a", "a", str, str)
		b := dsl.StreamFrom(d, "b", "b", str, str)
		ms := time.Millisecond
		w := dsl.JoinTimeDifference(0).Before(time.Duration(before) * ms).After(time.Duration(after) * ms).Grace(time.Duration(grace) * ms)
		dsl.StreamJoin(a, b, w, ssJoiner, str, str, str).To("inner", str, str)
		dsl.StreamLeftJoin(a, b, w, ssLeft, str, str, str).To("left", str, str)
		dsl.StreamOuterJoin(a, b, w, ssOuter, str, str, str).To("outer", str, str)
		top, err := d.Build()
		require.NoError(t, err)
		drv := topologytest.New(t, top, topologytest.Options{Partitions: parts})

		part := func(key string) int32 { return drv.Partition([]byte(key)) }
		inner, left, outer, lateA, lateB := ssReference(evs, part, before, after, grace)
		for j, e := range evs {
			topic := "b"
			if e.a {
				topic = "a"
			}
			ssPipe(drv, topic, e.key, e.value, e.ts, strconv.Itoa(j))
			for _, o := range []struct {
				topic string
				want  []ssRec
			}{{"inner", inner[j]}, {"left", left[j]}, {"outer", outer[j]}} {
				require.Equal(t, o.want, ssRead(drv, o.topic), "%s after event %d (%v): %s", o.topic, j, e, name)
			}
		}
		for _, node := range []string{"a-join", "a-left-join", "a-outer-join"} {
			require.Equal(t, lateA, drv.Count(node+"-this", dsl.EventLateDropped), "%s: %s", node, name)
			require.Equal(t, lateB, drv.Count(node+"-other", dsl.EventLateDropped), "%s: %s", node, name)
		}
	}
}
