package dsl

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// ErrSessionWindow is wrapped by the *BuildError of a session-windowed
// aggregation with an inactivity gap that is not positive, or a negative
// Grace, Retention or CloseOnWallClock.
var ErrSessionWindow = errors.New("dsl: invalid session window")

// SessionWindows describes session windows: a key's records whose
// timestamps are at most the inactivity gap apart are in one session.
type SessionWindows struct{ gap time.Duration }

// Session returns session windows with the given inactivity gap (Kafka
// Streams' SessionWindows.ofInactivityGapAndGrace; grace is an option of
// SessionWindowedBy). The gap must be positive; it is kept in
// milliseconds, as Kafka timestamps are.
func Session(inactivityGap time.Duration) SessionWindows {
	return SessionWindows{gap: inactivityGap.Truncate(time.Millisecond)}
}

// SessionGroup is a grouped stream windowed by sessions, ready for an
// aggregation.
//
// A session of a key is stored and emitted as the window [first record's
// time, last record's time], both ends inclusive (Window.End is the last
// record's timestamp, so a session of one record has Start == End), as
// Kafka Streams' session windows are: the numbers on the wire are the
// same. A record at ts joins every session of its key that ends at or
// after ts-gap and starts at or before ts+gap: it extends one, or bridges
// several, which are merged (their aggregates combined with the merger)
// into one. Sessions only ever merge: a record can lengthen a session or
// join two, never cut one, so no session is split.
//
// Results carry the session's end as their timestamp, as in Kafka
// Streams. With updates, a record that bridges or extends sessions emits a
// deletion of each session that is gone, then the new session; a record
// inside a session emits only the session's new value (Kafka Streams also
// emits a deletion of the unchanged window first). The aggregations'
// tables are backed by a window store (topology.WindowStore) named as the
// table; Table.Store, which returns key-value stores, reports none.
//
// Closing (Kafka Streams' rule): a session closes when stream time passes
// its end + gap + grace, i.e. when end + gap + grace < stream time; no
// record can extend it after that. With EmitFinal its value is emitted
// then, once, and it leaves the store in the same transaction. Without
// it every change is emitted (a merged-away session as a deletion), and a
// closed session stays in the store, queryable, until stream time passes
// its end + gap + max(Retention, grace).
//
// Late records: a record is late when its timestamp is more than grace
// behind stream time (ts + grace < stream time), or, with
// CloseOnWallClock, within gap of a session the wall clock may have
// closed. Kafka Streams also accepts a record up to gap + grace behind
// stream time when the session it would make is still open; such a
// record can touch a session that was already closed and emitted as
// final, which would emit that session a second time. Judging lateness by
// the record's own time makes every accepted record provably unable to
// reach a closed session: finals are never emitted twice and sessions
// never split.
type SessionGroup[K, V any] struct {
	g   *Grouped[K, V]
	gap time.Duration
	cfg windowCfg
}

// SessionWindowedBy windows the grouped stream by sessions (Kafka Streams'
// windowedBy(SessionWindows)). Options: Grace, EmitFinal,
// CloseOnWallClock, Late, Retention, WindowNamed.
//
// It is a function, not a method of Grouped: Go rejects a method of
// Grouped[K, V] whose results lead, through Table and Stream, back to a
// Grouped[Windowed[K], V] (an instantiation cycle).
func SessionWindowedBy[K, V any](g *Grouped[K, V], w SessionWindows, opts ...WindowOpt) *SessionGroup[K, V] {
	return &SessionGroup[K, V]{g: g, gap: w.gap, cfg: windowConfig(opts)}
}

// Count counts the records per key and session into a table keyed by
// session (store and operator: "<grouping>-session-count" unless
// WindowNamed). Records with a nil key or value are skipped.
func (s *SessionGroup[K, V]) Count() *Table[topology.Windowed[K], int64] {
	return sessionAggregate(s, "session-count", topology.Int64(), sessionFuncs[K, V, int64]{
		add:   func(_ K, _ V, n int64, _ bool) int64 { return n + 1 },
		merge: func(_ K, a, b int64) int64 { return a + b },
	})
}

// Reduce folds the values per key and session with fn, starting from the
// session's first value; fn also merges two sessions' values when a record
// bridges them (as Kafka Streams' session reduce does), so it should be
// associative. The store encodes values with the grouping's value serde.
func (s *SessionGroup[K, V]) Reduce(fn func(agg, v V) V) *Table[topology.Windowed[K], V] {
	return sessionAggregate(s, "session-reduce", s.g.vs, sessionFuncs[K, V, V]{
		add: func(_ K, v, agg V, found bool) V {
			if !found {
				return v
			}
			return fn(agg, v)
		},
		merge: func(_ K, a, b V) V { return fn(a, b) },
	})
}

// SessionAggregate folds the values per key and session with fn, starting
// from init(), into a table keyed by session whose store encodes
// aggregates with as. When a record bridges sessions, their aggregates are
// combined with merge (earlier session first) before fn adds the record,
// as Kafka Streams' Merger. Records with a nil key or value are skipped.
func SessionAggregate[K, V, A any](s *SessionGroup[K, V], init func() A, fn func(k K, v V, agg A) A,
	merge func(k K, a, b A) A, as topology.Serde[A]) *Table[topology.Windowed[K], A] {
	return sessionAggregate(s, "session-aggregate", as, sessionFuncs[K, V, A]{
		add: func(k K, v V, agg A, found bool) A {
			if !found {
				agg = init()
			}
			return fn(k, v, agg)
		},
		merge: merge,
	})
}

// sessionFuncs are an aggregation's step (found false: the record opens a
// session) and its merger.
type sessionFuncs[K, V, A any] struct {
	add   func(k K, v V, agg A, found bool) A
	merge func(k K, a, b A) A
}

// sessionOp is one session-windowed aggregation's node: its store, its
// table and its settings.
type sessionOp[K, V, A any] struct {
	store topology.WindowStoreRef[K, A]
	t     *Table[topology.Windowed[K], A]
	f     sessionFuncs[K, V, A]
	gap   time.Duration
	cfg   windowCfg
}

// sessionMark is the name of the closing watermark in the store: the
// session end up to which the wall clock closed sessions.
const sessionMark = "closed"

func sessionAggregate[K, V, A any](s *SessionGroup[K, V], op string, as topology.Serde[A], f sessionFuncs[K, V, A]) *Table[topology.Windowed[K], A] {
	d := s.g.s.d
	name := d.opName(s.g.name, op, s.cfg.opts, true)
	if err := s.validate(); err != nil {
		d.fail(name, err)
	}
	store := topology.WindowStore(d.b, name, s.g.ks, as)
	o := &sessionOp[K, V, A]{
		store: store,
		t:     &Table[topology.Windowed[K], A]{d: d, name: name, procs: []string{name}, wins: store},
		f:     f, gap: s.gap, cfg: s.cfg,
	}
	keyNil, valNil := nilFunc[K](), nilFunc[V]()
	ref := topology.Node(d.b, name, func(c *topology.Call, r topology.Record[K, V]) error {
		if keyNil(r.Key) || valNil(r.Value) {
			return nil
		}
		return o.process(c, r)
	}, topology.Parents(s.g.s.parents()...), topology.Stores(name))
	s.g.s.feed(ref.SendRecord)
	if s.cfg.wallClock > 0 {
		// The punctuator emits what it closes: it is a parent of the
		// table's children too.
		p := d.take(name + "-wall-close")
		every := max(min(s.cfg.wallClock/2, time.Second), time.Millisecond)
		topology.Schedule(d.b, p, every, topology.WallClock, o.wallClose, topology.Stores(name))
		o.t.procs = append(o.t.procs, p)
	}
	return o.t
}

func (s *SessionGroup[K, V]) validate() error {
	switch {
	case s.gap <= 0:
		return fmt.Errorf("%w: inactivity gap %s is not positive (at least 1ms)", ErrSessionWindow, s.gap)
	case s.cfg.grace < 0:
		return fmt.Errorf("%w: grace %s is negative", ErrSessionWindow, s.cfg.grace)
	case s.cfg.retention < 0:
		return fmt.Errorf("%w: retention %s is negative", ErrSessionWindow, s.cfg.retention)
	case s.cfg.wallClock < 0:
		return fmt.Errorf("%w: wall-clock delay %s is negative", ErrSessionWindow, s.cfg.wallClock)
	}
	return nil
}

// session is a stored session and its aggregate.
type session[A any] struct {
	w   topology.Window
	agg A
}

// watermark returns the closing watermark: every session that ends at or
// before it is closed. It is the later of what stream time closed (end +
// gap + grace < stream time) and what the wall clock closed (the mark).
func (o *sessionOp[K, V, A]) watermark(c *topology.Call) (time.Time, error) {
	w := c.StreamTime().Add(-o.gap - o.cfg.grace - time.Millisecond)
	mark, ok, err := o.store.Mark(c, sessionMark)
	if ok && mark.After(w) {
		w = mark
	}
	return w, err
}

// process adds one record: late check, merge, write, emit, then close
// what the record's stream time closed.
func (o *sessionOp[K, V, A]) process(c *topology.Call, r topology.Record[K, V]) error {
	ts := time.UnixMilli(r.Timestamp.UnixMilli()).UTC()
	wm, err := o.watermark(c)
	if err != nil {
		return err
	}
	// A closed session ends at or before wm; a record within gap of it
	// would reach it. ts > wm+gap guarantees it cannot (see SessionGroup).
	if !ts.After(wm.Add(o.gap)) {
		if o.cfg.late == LateDrop {
			c.Count(EventLateDropped, 1)
			// A dropped record is processed: it may move stream time
			// (past a wall-clock mark), and what that closes closes now.
			return o.maybeClose(c, r.Timestamp, wm)
		}
		return fmt.Errorf("%w: session of a record at %s (sessions ending at or before %s are closed)",
			ErrLate, ts.Format(time.RFC3339Nano), wm.Format(time.RFC3339Nano))
	}
	merged, longest, err := o.overlapping(c, r.Key, ts)
	if err != nil {
		return err
	}
	w, err := o.merge(c, r, ts, merged)
	if err != nil {
		return err
	}
	if n := w.End.Sub(w.Start); n > longest {
		if err := o.store.SetMark(c, longestMark, time.UnixMilli(n.Milliseconds())); err != nil {
			return err
		}
	}
	return o.maybeClose(c, r.Timestamp, wm)
}

// maybeClose closes what stream time closed, after a record at ts (its
// timestamp): only a record that moved stream time (ts is stream time) can
// have closed any.
func (o *sessionOp[K, V, A]) maybeClose(c *topology.Call, ts, wm time.Time) error {
	if ts.Before(c.StreamTime()) {
		return nil
	}
	return o.close(c, wm)
}

// overlapping returns, in start order, key's sessions that a record at ts
// joins: those ending at or after ts-gap and starting at or before ts+gap.
// A key's sessions never overlap, but one can be long: a session that
// ends at or after ts-gap starts at or after ts-gap minus the longest
// session's length, which the store keeps (the "longest" mark, a length
// as a time after the Unix epoch). So the read costs the key's sessions
// (and the deletions of its merged-away ones, until compaction) in that
// range, not its whole history.
func (o *sessionOp[K, V, A]) overlapping(c *topology.Call, key K, ts time.Time) ([]session[A], time.Duration, error) {
	longest, err := o.longest(c)
	if err != nil {
		return nil, 0, err
	}
	var out []session[A]
	lo := ts.Add(-o.gap)
	err = o.store.Fetch(c, key, lo.Add(-longest), ts.Add(o.gap), func(w topology.Window, a A) (bool, error) {
		if !w.End.Before(lo) {
			out = append(out, session[A]{w, a})
		}
		return true, nil
	})
	return out, longest, err
}

// longestMark names the length of the task's longest session so far.
const longestMark = "longest"

func (o *sessionOp[K, V, A]) longest(c *topology.Call) (time.Duration, error) {
	t, ok, err := o.store.Mark(c, longestMark)
	if err != nil || !ok {
		return 0, err
	}
	return time.Duration(t.UnixMilli()) * time.Millisecond, nil
}

// merge folds the record and the sessions it joins into one session,
// deletes the merged-away sessions (emitting their deletion when emitting
// updates) and writes the new one, whose window it returns.
func (o *sessionOp[K, V, A]) merge(c *topology.Call, r topology.Record[K, V], ts time.Time, merged []session[A]) (topology.Window, error) {
	w := topology.Window{Start: ts, End: ts}
	var agg A
	for i, s := range merged {
		if i == 0 {
			agg = s.agg
		} else {
			agg = o.f.merge(r.Key, agg, s.agg)
		}
		if s.w.Start.Before(w.Start) {
			w.Start = s.w.Start
		}
		if s.w.End.After(w.End) {
			w.End = s.w.End
		}
	}
	agg = o.f.add(r.Key, r.Value, agg, len(merged) > 0)
	for _, s := range merged {
		if s.w == w {
			continue // overwritten below, not gone
		}
		if err := o.store.Delete(c, r.Key, s.w); err != nil {
			return w, err
		}
		if !o.cfg.final {
			var zero A
			del := topology.Record[topology.Windowed[K], A]{Key: topology.Windowed[K]{Key: r.Key, Window: s.w}, Value: zero, Timestamp: s.w.End, Headers: r.Headers}
			if err := o.t.push(c, del, true); err != nil {
				return w, err
			}
		}
	}
	if err := o.store.Put(c, r.Key, w, agg); err != nil {
		return w, err
	}
	if o.cfg.final {
		return w, nil
	}
	return w, o.t.push(c, topology.Record[topology.Windowed[K], A]{Key: topology.Windowed[K]{Key: r.Key, Window: w}, Value: agg, Timestamp: w.End, Headers: r.Headers}, false)
}

// close closes the sessions ending at or before wm: with EmitFinal it
// emits and deletes them; otherwise it deletes those past retention.
func (o *sessionOp[K, V, A]) close(c *topology.Call, wm time.Time) error {
	if !o.cfg.final {
		upTo := wm.Add(-max(o.cfg.retention-o.cfg.grace, 0))
		return o.sweep(c, upTo, func(w topology.Windowed[K], _ A) (bool, error) {
			return true, o.store.Delete(c, w.Key, w.Window)
		})
	}
	return o.sweep(c, wm, func(w topology.Windowed[K], a A) (bool, error) {
		if err := o.t.push(c, topology.Record[topology.Windowed[K], A]{Key: w, Value: a, Timestamp: w.Window.End}, false); err != nil {
			return false, err
		}
		return true, o.store.Delete(c, w.Key, w.Window)
	})
}

// sweptMark names how far close has swept the end index.
const sweptMark = "swept"

// sweep runs fn on the sessions ending after the last sweep and at or
// before upTo, and remembers upTo. No session can end at or before a
// sweep's bound after it (a record that would make one is late), so the
// next sweep starts there, skipping the index entries of the sessions it
// deleted (tombstones until Pebble compacts them).
func (o *sessionOp[K, V, A]) sweep(c *topology.Call, upTo time.Time, fn func(w topology.Windowed[K], a A) (bool, error)) error {
	swept, ok, err := o.store.Mark(c, sweptMark)
	if err != nil {
		return err
	}
	if !ok {
		swept = time.UnixMilli(math.MinInt64)
	} else if !upTo.After(swept) {
		return nil
	}
	if err := o.store.EndedBetween(c, swept, upTo, fn); err != nil {
		return err
	}
	return o.store.SetMark(c, sweptMark, upTo)
}

// wallClose closes, on the wall clock, the sessions whose end + gap +
// grace + the CloseOnWallClock delay has passed, and moves the mark so
// that records for them are late from now on.
func (o *sessionOp[K, V, A]) wallClose(c *topology.Call, now time.Time) error {
	wm, err := o.watermark(c)
	if err != nil {
		return err
	}
	byWall := time.UnixMilli(now.UnixMilli()).UTC().Add(-o.cfg.wallClock - o.gap - o.cfg.grace - time.Millisecond)
	if !byWall.After(wm) {
		return nil
	}
	if err := o.store.SetMark(c, sessionMark, byWall); err != nil {
		return err
	}
	return o.close(c, byWall)
}
