package dsl

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// Sliding returns sliding windows, as Kafka Streams' SlidingWindows with
// timeDifference maxDifference: two records are in a common window when
// their timestamps differ by at most maxDifference. The windows of a key
// are those that contain records and start or end on one: for each record
// at t its left window [t-maxDifference, t], and, when a later record is
// within maxDifference + 1 ms of it, its right window
// [t+1ms, t+1ms+maxDifference]. Window bounds are inclusive, so a
// topology.Window's End is the last millisecond plus 1 ms (End is
// exclusive there). maxDifference must be a positive whole number of
// milliseconds.
//
// Each record recomputes the windows it changes from the key's records,
// kept in a second window store ("<operator>-records") for
// 2*maxDifference + grace: a record costs a fold over the records within
// 2*maxDifference + 1 ms of it, per window it is in.
func Sliding(maxDifference time.Duration) Windows {
	return Windows{size: maxDifference, sliding: true}
}

// processSliding stores the record, recomputes every window that
// contains it (and creates its own left window and, if records follow
// within reach, its right window), then closes and expires what the
// watermark passed.
func (a *timeWindowed[K, V, A]) processSliding(c *topology.Call, r topology.Record[K, V]) error {
	if a.keyNil(r.Key) || a.valNil(r.Value) {
		return nil
	}
	wm, mark, marked, err := a.watermark(c)
	if err != nil {
		return err
	}
	t, d, g, w := r.Timestamp.UnixMilli(), a.w.size.Milliseconds(), a.cfg.grace.Milliseconds(), wm.UnixMilli()
	closed := func(s int64) bool { return s+d+1+g <= w }
	if closed(t) { // every window containing t starts at or before t
		if a.cfg.late == LateDrop {
			c.Count(EventLateDropped, 1)
			return nil
		}
		return fmt.Errorf("%w: timestamp %s, closed up to %s (grace %s)", ErrLate,
			r.Timestamp.UTC().Format(time.RFC3339Nano), wm.UTC().Format(time.RFC3339Nano), a.cfg.grace)
	}
	at := topology.Window{Start: time.UnixMilli(t).UTC(), End: time.UnixMilli(t).UTC()}
	vs, _, err := a.raw.Get(c, r.Key, at)
	if err != nil {
		return err
	}
	if err := a.raw.Put(c, r.Key, at, append(vs, r.Value)); err != nil {
		return err
	}
	recs, err := a.slidingRecords(c, r.Key, t-2*d-1, t+d+1)
	if err != nil {
		return err
	}
	starts := []int64{t - d}
	var later bool
	for _, rc := range recs {
		switch {
		case rc.ts >= t-d-1 && rc.ts < t:
			starts = append(starts, rc.ts+1) // its right window contains t
		case rc.ts >= t && rc.ts <= t+d:
			starts = append(starts, rc.ts-d) // its left window contains t
		}
		later = later || (rc.ts > t && rc.ts <= t+d+1)
	}
	slices.Sort(starts)
	for _, s := range slices.Compact(starts) {
		if !closed(s) {
			if err := a.slidingUpdate(c, r, recs, s, true); err != nil {
				return err
			}
		}
	}
	if later && !closed(t+1) {
		if err := a.slidingUpdate(c, r, recs, t+1, false); err != nil {
			return err
		}
	}
	if err := a.expireRecords(c, wm, 2*a.w.size+time.Millisecond+a.cfg.grace); err != nil {
		return err
	}
	return a.advance(c, wm, mark, marked)
}

type slidingRec[V any] struct {
	ts int64
	vs []V
}

// slidingRecords returns key's records with timestamps in [from, to], in
// time order (arrival order within a millisecond).
func (a *timeWindowed[K, V, A]) slidingRecords(c *topology.Call, key K, from, to int64) ([]slidingRec[V], error) {
	var out []slidingRec[V]
	err := a.raw.Fetch(c, key, time.UnixMilli(from), time.UnixMilli(to), func(w topology.Window, vs []V) (bool, error) {
		out = append(out, slidingRec[V]{w.Start.UnixMilli(), vs})
		return true, nil
	})
	return out, err
}

// slidingUpdate folds recs in [s, s+d] into window s and forwards the
// result unless only finals are emitted. changed false (the record's
// right window, which does not contain it): a window that exists is left
// as it is.
func (a *timeWindowed[K, V, A]) slidingUpdate(c *topology.Call, r topology.Record[K, V], recs []slidingRec[V], s int64, changed bool) error {
	d := a.w.size.Milliseconds()
	w := topology.Window{Start: time.UnixMilli(s).UTC(), End: time.UnixMilli(s + d + 1).UTC()}
	if !changed {
		if _, ok, err := a.store.Get(c, r.Key, w); err != nil || ok {
			return err
		}
	}
	var agg A
	found := false
	for _, rc := range recs {
		if rc.ts < s || rc.ts > s+d {
			continue
		}
		for _, v := range rc.vs {
			agg, found = a.step(r.Key, v, agg, found), true
		}
	}
	if err := a.store.Put(c, r.Key, w, agg); err != nil || a.cfg.final {
		return err
	}
	return a.t.push(c, topology.Record[topology.Windowed[K], A]{Key: topology.Windowed[K]{Key: r.Key, Window: w}, Value: agg, Timestamp: r.Timestamp, Headers: r.Headers}, false)
}

// expireRecords deletes the stored records no open window can need: those
// at or before wm - lag.
func (a *timeWindowed[K, V, A]) expireRecords(c *topology.Call, wm time.Time, lag time.Duration) error {
	mark, ok, err := a.raw.Mark(c, timeMarkExpired)
	if err != nil || (ok && !wm.After(mark)) {
		return err
	}
	del := func(w topology.Windowed[K], _ []V) (bool, error) { return true, a.raw.Delete(c, w.Key, w.Window) }
	if ok {
		err = a.raw.EndedBetween(c, mark.Add(-lag), wm.Add(-lag), del)
	} else {
		err = a.raw.Ended(c, wm.Add(-lag), del)
	}
	if err != nil {
		return err
	}
	return a.raw.SetMark(c, timeMarkExpired, wm)
}

// valueListSerde encodes a []V as each value's encoding with a uvarint
// length before it.
type valueListSerde[V any] struct{ vs topology.Serde[V] }

func (s valueListSerde[V]) Encode(vs []V) ([]byte, error) {
	var b []byte
	for _, v := range vs {
		e, err := s.vs.Encode(v)
		if err != nil {
			return nil, err
		}
		b = append(binary.AppendUvarint(b, uint64(len(e))), e...)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func (s valueListSerde[V]) Decode(b []byte) ([]V, error) {
	var out []V
	for len(b) > 0 {
		n, m := binary.Uvarint(b)
		if m <= 0 || uint64(len(b)-m) < n {
			return nil, fmt.Errorf("value list: malformed length at %d bytes from the end", len(b))
		}
		v, err := s.vs.Decode(b[m : m+int(n)])
		if err != nil {
			return nil, err
		}
		out, b = append(out, v), b[m+int(n):]
	}
	return out, nil
}
