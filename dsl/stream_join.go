package dsl

import (
	"errors"
	"fmt"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// JoinWindows says which records of two streams join: a record of the
// first stream at time t joins every record of the second, with the same
// key, timestamped in [t - before, t + after] (bounds inclusive), as Kafka
// Streams' JoinWindows. Make one with JoinTimeDifference; the zero value
// joins records with equal timestamps, with no grace.
type JoinWindows struct {
	before, after, grace time.Duration
}

// JoinTimeDifference returns windows joining records whose timestamps
// differ by at most d (|t1 - t2| <= d), with no grace.
func JoinTimeDifference(d time.Duration) JoinWindows { return JoinWindows{before: d, after: d} }

// Before returns w with the first stream's records joining second-stream
// records up to d before them (t2 >= t1 - d).
func (w JoinWindows) Before(d time.Duration) JoinWindows { w.before = d; return w }

// After returns w with the first stream's records joining second-stream
// records up to d after them (t2 <= t1 + d).
func (w JoinWindows) After(d time.Duration) JoinWindows { w.after = d; return w }

// Grace returns w with grace g: how long, in stream time, after a
// record's window end (the last timestamp a partner may have: t + after
// for the first stream, t + before for the second) records are still
// accepted, and a left or outer join waits before emitting a record as
// unjoined. The default is 0.
func (w JoinWindows) Grace(g time.Duration) JoinWindows { w.grace = g; return w }

// BeforeAfter returns the window's bounds, as Before and After set them.
func (w JoinWindows) BeforeAfter() (before, after time.Duration) { return w.before, w.after }

// GracePeriod returns the grace (see Grace).
func (w JoinWindows) GracePeriod() time.Duration { return w.grace }

func (w JoinWindows) validate() error {
	for _, d := range []struct {
		what string
		d    time.Duration
	}{{"before", w.before}, {"after", w.after}, {"grace", w.grace}} {
		if d.d < 0 {
			return fmt.Errorf("%w: join window %s %s is negative", ErrBadWindow, d.what, d.d)
		}
		if d.d%time.Millisecond != 0 {
			return fmt.Errorf("%w: join window %s %s is not a whole number of milliseconds", ErrBadWindow, d.what, d.d)
		}
	}
	return nil
}

// StreamJoin joins two streams within windows (Kafka Streams'
// KStream-KStream inner join): each record of a joins every record of b
// with the same key whose timestamp is within w of its own, and vice
// versa; each pair is emitted once, when its second record arrives, as
// joiner(key, a's value, b's value) with the key, the later of the two
// timestamps, and the headers of the record that arrived second.
//
// Each side's records are buffered in a window store of its own, the
// operator's name plus "-this-store" (a's) and "-other-store" (b's), keyed
// by key and timestamp (records with equal keys and timestamps are all
// kept); ks encodes the keys of both and vs1, vs2 the values. A buffered
// record is deleted once stream time passes its timestamp plus before,
// after and grace: no record that is not late can join it any more.
// Records whose window end plus grace (see JoinWindows.Grace) is before
// stream time are late: they join nothing and are dropped, counted as the
// event EventLateDropped of the node of their side. Records with a nil
// key or value join nothing.
//
// Stream time is the join's sub-topology's in the task
// (topology.Call.StreamTime): the largest timestamp of both streams' records
// (after their repartitions, when re-keyed), as for the windowed
// aggregations.
//
// a and b must be co-partitioned (same partition count, keyed alike: see
// "Joins" in the package documentation); a re-keyed one is repartitioned
// by its new key first, with ks and its value serde (a topic
// "<group>-<name>-this-repartition" or "-other-repartition"); w must be valid (no negative or
// sub-millisecond durations, else ErrBadWindow). a and b may be the same
// stream: as in Kafka Streams, a self-join gives each pair of records in
// both orders and each record with itself. The operator is named "<a>-join" unless Named; its nodes
// are "<name>-this" (fed by a) and "<name>-other" (fed by b). It owns
// state, so RequireNames requires a name.
func StreamJoin[K, V1, V2, VR any](a *Stream[K, V1], b *Stream[K, V2], w JoinWindows, joiner func(K, V1, V2) VR,
	ks topology.Serde[K], vs1 topology.Serde[V1], vs2 topology.Serde[V2], opts ...Opt) *Stream[K, VR] {
	return streamJoin(a, b, w, "join", false, false, ks, vs1, vs2, opts,
		func(k K, v1 V1, _ bool, v2 V2, _ bool) VR { return joiner(k, v1, v2) })
}

// StreamLeftJoin is StreamJoin, except that a record of a that joins no
// record of b is emitted too, once, as joiner(key, value, zero V2, false),
// with its own timestamp and no headers: not when it arrives (a record of
// b may still come) but when stream time passes its window end (its
// timestamp plus after) plus grace, in the transaction of the first
// record of a or b the task processes once stream time passed it, and
// only if no record of b joined it by then (Kafka Streams' behaviour since
// 3.1, without its spurious left results). There is no wall-clock close:
// a partition whose inputs go quiet holds its last unjoined records until
// a record of a or b arrives. A record of a with a nil key is emitted as
// unjoined at once, as in Kafka Streams since KIP-962.
//
// One case still gives both: an out-of-order record of b (before > 0)
// that is not late may join a record of a already emitted as unjoined
// (t2 <= t1 + after and t1 + after + grace is before stream time, while
// t2 + before + grace is not); the pair is then emitted after the
// unjoined record. In-order input never gives both. Kafka Streams keeps
// the buffered records as long and, as far as we know, does the same.
// Kafka Streams also emits at once an out-of-order unjoined record whose
// window end (without grace) is already past; this join holds it until
// end plus grace like any other, which can only avoid such duplicates.
//
// The operator is named "<a>-left-join" unless Named.
func StreamLeftJoin[K, V1, V2, VR any](a *Stream[K, V1], b *Stream[K, V2], w JoinWindows, joiner func(k K, v1 V1, v2 V2, found bool) VR,
	ks topology.Serde[K], vs1 topology.Serde[V1], vs2 topology.Serde[V2], opts ...Opt) *Stream[K, VR] {
	return streamJoin(a, b, w, "left-join", true, false, ks, vs1, vs2, opts,
		func(k K, v1 V1, _ bool, v2 V2, ok2 bool) VR { return joiner(k, v1, v2, ok2) })
}

// StreamOuterJoin is StreamLeftJoin for both sides: a record of a or of b
// that joins no record of the other stream is emitted once, when stream
// time passes its window end (t1 + after for a record of a, t2 + before
// for one of b) plus grace, as joiner(key, v1, true, zero, false) or
// joiner(key, zero, false, v2, true). The operator is named
// "<a>-outer-join" unless Named.
func StreamOuterJoin[K, V1, V2, VR any](a *Stream[K, V1], b *Stream[K, V2], w JoinWindows, joiner func(k K, v1 V1, ok1 bool, v2 V2, ok2 bool) VR,
	ks topology.Serde[K], vs1 topology.Serde[V1], vs2 topology.Serde[V2], opts ...Opt) *Stream[K, VR] {
	return streamJoin(a, b, w, "outer-join", true, true, ks, vs1, vs2, opts, joiner)
}

// joinBuf is a stream-stream join store's entry: the values of one key's
// records with one timestamp, and whether none of them has joined yet.
type joinBuf[V any] struct {
	unjoined bool
	vals     []V
}

// joinBufSerde encodes a joinBuf as a flag byte (1: unjoined) and the
// values as valueListSerde does.
type joinBufSerde[V any] struct{ l valueListSerde[V] }

func (s joinBufSerde[V]) Encode(b joinBuf[V]) ([]byte, error) {
	l, err := s.l.Encode(b.vals)
	if err != nil {
		return nil, err
	}
	flag := byte(0)
	if b.unjoined {
		flag = 1
	}
	return append([]byte{flag}, l...), nil
}

func (s joinBufSerde[V]) Decode(b []byte) (joinBuf[V], error) {
	if len(b) == 0 || b[0] > 1 {
		return joinBuf[V]{}, errors.New("join buffer: missing or bad flag byte")
	}
	vals, err := s.l.Decode(b[1:])
	return joinBuf[V]{unjoined: b[0] == 1, vals: vals}, err
}

// The join stores' marks: the window end up to which entries were
// emitted as unjoined (closed) and deleted (expired).
const (
	joinMarkClosed  = "closed"
	joinMarkExpired = "expired"
)

// joinSideOf is one side of a stream-stream join: its store, whose entries
// are windows [t, t + reach] (reach: how far after t a partner may be), and
// whether its unjoined records are emitted.
type joinSideOf[K, V any] struct {
	store topology.WindowStoreRef[K, joinBuf[V]]
	reach time.Duration // after for a, before for b
	outer bool
	nilV  func(V) bool
}

// streamJoin adds the two nodes and two stores of a stream-stream join.
// outer1 (outer2) says whether unjoined records of a (b) are emitted.
func streamJoin[K, V1, V2, VR any](a *Stream[K, V1], b *Stream[K, V2], w JoinWindows, op string, outer1, outer2 bool,
	ks topology.Serde[K], vs1 topology.Serde[V1], vs2 topology.Serde[V2], opts []Opt,
	joiner func(k K, v1 V1, ok1 bool, v2 V2, ok2 bool) VR) *Stream[K, VR] {
	d := a.d
	name := d.opName(a.name, op, opts, true)
	this, other := d.take(name+"-this"), d.take(name+"-other")
	out := &Stream[K, VR]{d: d, name: name, procs: []string{this, other}}
	if err := w.validate(); err != nil {
		d.fail(name, err)
	}
	// A re-keyed side is repartitioned by its new key first, with the
	// join's serdes, as Kafka Streams does.
	if a.rekeyed {
		a = repartition(a, d.take(name+"-this-repartition"), ks, vs1)
	}
	if b.rekeyed {
		b = repartition(b, d.take(name+"-other-repartition"), ks, vs2)
	}
	s1 := joinSideOf[K, V1]{store: topology.WindowStore(d.b, name+"-this-store", ks, topology.Serde[joinBuf[V1]](joinBufSerde[V1]{valueListSerde[V1]{vs1}})),
		reach: w.after, outer: outer1, nilV: nilFunc[V1]()}
	s2 := joinSideOf[K, V2]{store: topology.WindowStore(d.b, name+"-other-store", ks, topology.Serde[joinBuf[V2]](joinBufSerde[V2]{valueListSerde[V2]{vs2}})),
		reach: w.before, outer: outer2, nilV: nilFunc[V2]()}
	keyNil := nilFunc[K]()
	emit := func(c *topology.Call, k K, v1 V1, ok1 bool, v2 V2, ok2 bool, ts time.Time, h []topology.Header) error {
		return out.push(c, topology.Record[K, VR]{Key: k, Value: joiner(k, v1, ok1, v2, ok2), Timestamp: ts, Headers: h})
	}
	// sweep emits the unjoined records whose window closed and deletes the
	// buffered records past retention, on both sides, after every record.
	sweep := func(c *topology.Call) error {
		st := c.StreamTime()
		var zero1 V1
		var zero2 V2
		if err := joinSweep(c, s1, w.grace, w.before+w.grace, st, func(k K, v V1, ts time.Time) error {
			return emit(c, k, v, true, zero2, false, ts, nil)
		}); err != nil {
			return err
		}
		return joinSweep(c, s2, w.grace, w.after+w.grace, st, func(k K, v V2, ts time.Time) error {
			return emit(c, k, zero1, false, v, true, ts, nil)
		})
	}
	stores := topology.Stores(s1.store.Name(), s2.store.Name())
	ref1 := topology.Node(d.b, this, func(c *topology.Call, r topology.Record[K, V1]) error {
		if err := joinRecord(c, r, keyNil, s1, s2, w.grace, func(v2 V2, ok bool, ts time.Time) error {
			return emit(c, r.Key, r.Value, true, v2, ok, ts, r.Headers)
		}); err != nil {
			return err
		}
		return sweep(c)
	}, topology.Parents(a.parents()...), stores)
	a.feed(ref1.SendRecord)
	ref2 := topology.Node(d.b, other, func(c *topology.Call, r topology.Record[K, V2]) error {
		if err := joinRecord(c, r, keyNil, s2, s1, w.grace, func(v1 V1, ok bool, ts time.Time) error {
			return emit(c, r.Key, v1, ok, r.Value, true, ts, r.Headers)
		}); err != nil {
			return err
		}
		return sweep(c)
	}, topology.Parents(b.parents()...), stores)
	b.feed(ref2.SendRecord)
	return out
}

// joinRecord joins r, a record of side me, with the buffered records of
// side them, calling emit (with the partner's value and the pair's
// timestamp) for each match, and buffers r. A late record is counted and
// dropped; one with a nil key is emitted as unjoined at once if me is
// outer (emit with ok false), else dropped, as is one with a nil value.
func joinRecord[K, V, VO any](c *topology.Call, r topology.Record[K, V], keyNil func(K) bool, me joinSideOf[K, V], them joinSideOf[K, VO],
	grace time.Duration, emit func(vo VO, ok bool, ts time.Time) error) error {
	if me.nilV(r.Value) {
		return nil
	}
	if keyNil(r.Key) {
		if !me.outer {
			return nil
		}
		var zero VO
		return emit(zero, false, r.Timestamp)
	}
	ts := truncMillis(r.Timestamp)
	mine := topology.Window{Start: ts, End: ts.Add(me.reach)}
	if mine.End.Add(grace).Before(c.StreamTime()) {
		c.Count(EventLateDropped, 1)
		return nil
	}
	// A partner at t2 has t2 in [ts - them.reach, ts + me.reach]: its own
	// window reaches back to ts.
	var matched bool
	var rejoin []topology.Window
	err := them.store.Fetch(c, r.Key, ts.Add(-them.reach), mine.End, func(w topology.Window, buf joinBuf[VO]) (bool, error) {
		matched = true
		if buf.unjoined {
			rejoin = append(rejoin, w)
		}
		at := ts // the later timestamp
		if w.Start.After(ts) {
			at = w.Start
		}
		for _, vo := range buf.vals {
			if err := emit(vo, true, at); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, w := range rejoin {
		buf, ok, err := them.store.Get(c, r.Key, w)
		if err != nil {
			return err
		}
		if ok {
			buf.unjoined = false
			if err := them.store.Put(c, r.Key, w, buf); err != nil {
				return err
			}
		}
	}
	buf, found, err := me.store.Get(c, r.Key, mine)
	if err != nil {
		return err
	}
	buf.unjoined = me.outer && !matched && (!found || buf.unjoined)
	buf.vals = append(buf.vals, r.Value)
	return me.store.Put(c, r.Key, mine, buf)
}

// truncMillis drops what is below the millisecond (stores keep
// milliseconds, as Kafka timestamps do).
func truncMillis(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// joinSweep, for one side at stream time st: if the side is outer, emits
// (oldest window end first) each unjoined record whose window end plus
// closeLag is before st; then deletes the entries whose window end plus
// expireLag is before st. Each moves a mark (the last end it covered) only
// when it found entries: entries are only ever added with an end above
// any bound computed so far (a record that is not late has end + grace >=
// st), so nothing can appear below a mark, nor between a mark and a bound
// that covered no entry.
func joinSweep[K, V any](c *topology.Call, s joinSideOf[K, V], closeLag, expireLag time.Duration, st time.Time,
	emit func(k K, v V, ts time.Time) error) error {
	if s.outer {
		err := joinSweepMark(c, s.store, joinMarkClosed, st.Add(-closeLag-time.Millisecond), func(w topology.Windowed[K], buf joinBuf[V]) error {
			if !buf.unjoined {
				return nil
			}
			for _, v := range buf.vals {
				if err := emit(w.Key, v, w.Window.Start); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return joinSweepMark(c, s.store, joinMarkExpired, st.Add(-expireLag-time.Millisecond), func(w topology.Windowed[K], _ joinBuf[V]) error {
		return s.store.Delete(c, w.Key, w.Window)
	})
}

// joinSweepMark calls fn for each entry of store whose window ends after
// mark name and at or before upTo, then moves the mark to upTo if there
// was one.
func joinSweepMark[K, V any](c *topology.Call, store topology.WindowStoreRef[K, V], name string, upTo time.Time,
	fn func(topology.Windowed[K], V) error) error {
	mark, marked, err := store.Mark(c, name)
	if err != nil || marked && !upTo.After(mark) {
		return err
	}
	var n int
	each := func(w topology.Windowed[K], v V) (bool, error) {
		n++
		return true, fn(w, v)
	}
	if marked {
		err = store.EndedBetween(c, mark, upTo, each)
	} else {
		err = store.Ended(c, upTo, each)
	}
	if err != nil || n == 0 {
		return err
	}
	return store.SetMark(c, name, upTo)
}
