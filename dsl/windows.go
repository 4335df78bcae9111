package dsl

import (
	"errors"
	"fmt"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// ErrBadWindow is wrapped by the *BuildError of a windowed aggregation
// whose window spec (Tumbling, Hopping) or options are invalid.
var ErrBadWindow = errors.New("dsl: invalid window")

// Windows says which time windows a record falls in. Make one with
// Tumbling, Hopping or Sliding; the zero value is invalid.
//
// Windows are aligned to the Unix epoch, as Kafka Streams' TimeWindows:
// the windows of size s advancing by a start at every multiple of a since
// 1970-01-01T00:00:00Z, so every task (and every restart) agrees on them.
type Windows struct {
	size, advance time.Duration
	sliding       bool
}

// Tumbling returns windows of size size that do not overlap: each record
// is in exactly one. size must be positive and a whole number of
// milliseconds.
func Tumbling(size time.Duration) Windows { return Windows{size: size, advance: size} }

// Hopping returns windows of size size starting every advance: each record
// is in size/advance of them (rounded up or down by its position). Both
// must be positive whole numbers of milliseconds, advance <= size;
// Hopping(s, s) is Tumbling(s).
func Hopping(size, advance time.Duration) Windows { return Windows{size: size, advance: advance} }

// Size returns the windows' length (for Sliding, the max difference).
func (w Windows) Size() time.Duration { return w.size }

// Advance returns how far apart the windows' starts are (0 for Sliding:
// its windows start on records).
func (w Windows) Advance() time.Duration { return w.advance }

func (w Windows) validate() error {
	if w.sliding {
		if w.size <= 0 || w.size%time.Millisecond != 0 {
			return fmt.Errorf("%w: sliding max difference %s must be a positive whole number of milliseconds", ErrBadWindow, w.size)
		}
		return nil
	}
	switch {
	case w.size <= 0 || w.advance <= 0:
		return fmt.Errorf("%w: size %s and advance %s must be positive", ErrBadWindow, w.size, w.advance)
	case w.size%time.Millisecond != 0 || w.advance%time.Millisecond != 0:
		return fmt.Errorf("%w: size %s and advance %s must be whole milliseconds", ErrBadWindow, w.size, w.advance)
	case w.advance > w.size:
		return fmt.Errorf("%w: advance %s is larger than size %s", ErrBadWindow, w.advance, w.size)
	}
	return nil
}

// forEach calls fn for each window ts is in, in start order, until fn
// returns an error.
func (w Windows) forEach(ts time.Time, fn func(topology.Window) error) error {
	t, size, adv := ts.UnixMilli(), w.size.Milliseconds(), w.advance.Milliseconds()
	// The first start is the smallest multiple of adv above t - size.
	first := floorDivMillis(t-size, adv)*adv + adv
	for s := first; s <= t; s += adv {
		if err := fn(topology.Window{Start: time.UnixMilli(s).UTC(), End: time.UnixMilli(s + size).UTC()}); err != nil {
			return err
		}
	}
	return nil
}

// endsIn reports whether a window can end in (from, to]: window ends are
// size plus a multiple of advance.
func (w Windows) endsIn(from, to time.Time) bool {
	if w.sliding {
		return to.After(from) // sliding windows end anywhere
	}
	size, adv := w.size.Milliseconds(), w.advance.Milliseconds()
	return floorDivMillis(to.UnixMilli()-size, adv) > floorDivMillis(from.UnixMilli()-size, adv)
}

func floorDivMillis(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// WindowedGroup is a grouped stream with windows, ready for a windowed
// aggregation (Count, Reduce, WindowedAggregate).
type WindowedGroup[K, V any] struct {
	g   *Grouped[K, V]
	w   Windows
	cfg windowCfg
}

// WindowedBy windows the grouped stream g: the aggregations of the result
// fold each key's records per window of w, a record going into every
// window its timestamp (the source's, after any topology.WithTimestamp)
// falls in. opts set grace, the emit strategy (every update, or EmitFinal),
// the wall-clock close, the late-record policy, retention and the name.
//
// WindowedBy is a function, not a method of Grouped: a method would make
// Go instantiate Grouped[Windowed[K]], then Grouped[Windowed[Windowed[K]]]
// and so on (an instantiation cycle), through the windowed table's
// ToStream and GroupByKey.
func WindowedBy[K, V any](g *Grouped[K, V], w Windows, opts ...WindowOpt) *WindowedGroup[K, V] {
	return &WindowedGroup[K, V]{g: g, w: w, cfg: windowConfig(opts)}
}

// Count counts each key's records per window into a windowed table (store:
// the operator's name, "<grouping>-windowed-count" unless named by
// WindowNamed or Named). Records with a nil key or value are skipped.
func (wg *WindowedGroup[K, V]) Count(opts ...Opt) *Table[topology.Windowed[K], int64] {
	return timeWindowedAggregate(wg, "windowed-count", topology.Int64(), opts,
		func(_ K, _ V, n int64, _ bool) int64 { return n + 1 })
}

// Reduce folds each key's values per window with fn, starting from the
// window's first value, into a windowed table whose store encodes values
// with the grouping's value serde ("<grouping>-windowed-reduce" unless
// named).
func (wg *WindowedGroup[K, V]) Reduce(fn func(agg, v V) V, opts ...Opt) *Table[topology.Windowed[K], V] {
	return timeWindowedAggregate(wg, "windowed-reduce", wg.g.vs, opts, func(_ K, v, agg V, found bool) V {
		if !found {
			return v
		}
		return fn(agg, v)
	})
}

// WindowedAggregate folds each key's values per window with fn, starting
// from init() in each window, into a windowed table whose store encodes
// aggregates with as ("<grouping>-windowed-aggregate" unless named). (A
// function, since methods take no type parameters.)
func WindowedAggregate[K, V, A any](wg *WindowedGroup[K, V], init func() A, fn func(k K, v V, agg A) A, as topology.Serde[A], opts ...Opt) *Table[topology.Windowed[K], A] {
	return timeWindowedAggregate(wg, "windowed-aggregate", as, opts, func(k K, v V, agg A, found bool) A {
		if !found {
			agg = init()
		}
		return fn(k, v, agg)
	})
}

// timeWindowed is a time-windowed aggregation's state and handles.
type timeWindowed[K, V, A any] struct {
	t     *Table[topology.Windowed[K], A]
	store topology.WindowStoreRef[K, A]
	raw   topology.WindowStoreRef[K, []V] // sliding windows: the records, by key and timestamp
	w     Windows
	cfg   windowCfg
	step  func(k K, v V, agg A, found bool) A
	// nil tests of keys, values and aggregates (see nilFunc)
	keyNil func(K) bool
	valNil func(V) bool
	aggNil func(A) bool
}

// The window store's marks. closed is the closing watermark: every window
// whose end plus grace is at or before it is closed (emitted, with
// EmitFinal). expired is the same for retention, without EmitFinal. Both
// are written only when they pass a window end, so not per record.
const (
	timeMarkClosed  = "closed"
	timeMarkExpired = "expired"
)

// timeWindowedAggregate adds the node, store and (with CloseOnWallClock)
// punctuator of a windowed aggregation. Its table has no StoreRef (the
// store is a window store); the store has the operator's name.
func timeWindowedAggregate[K, V, A any](wg *WindowedGroup[K, V], op string, as topology.Serde[A], opts []Opt,
	step func(k K, v V, agg A, found bool) A) *Table[topology.Windowed[K], A] {
	g, d := wg.g, wg.g.s.d
	name := d.opName(g.name, op, append(wg.cfg.opts, opts...), true)
	if err := wg.w.validate(); err != nil {
		d.fail(name, err)
	}
	if err := wg.cfg.validateTime(); err != nil {
		d.fail(name, err)
	}
	a := &timeWindowed[K, V, A]{
		store: topology.WindowStore(d.b, name, g.ks, as),
		w:     wg.w, cfg: wg.cfg, step: step,
		keyNil: nilFunc[K](), valNil: nilFunc[V](), aggNil: nilFunc[A](),
	}
	a.t = &Table[topology.Windowed[K], A]{d: d, name: name, procs: []string{name}, wins: a.store}
	process, stores := a.process, []string{name}
	if wg.w.sliding {
		a.raw = topology.WindowStore(d.b, name+"-records", g.ks, topology.Serde[[]V](valueListSerde[V]{g.vs}))
		process, stores = a.processSliding, append(stores, a.raw.Name())
	}
	ref := topology.Node(d.b, name, process, topology.Parents(g.s.parents()...), topology.Stores(stores...))
	g.s.feed(ref.SendRecord)
	if wg.cfg.wallClock > 0 {
		p := topology.Schedule(d.b, name+"-wall-close", wallCloseInterval(wg.cfg.wallClock), topology.WallClock, a.wallClose, topology.Stores(name))
		a.t.procs = append(a.t.procs, p.Name())
	}
	return a.t
}

func (c windowCfg) validateTime() error {
	switch {
	case c.grace < 0:
		return fmt.Errorf("%w: negative grace %s", ErrBadWindow, c.grace)
	case c.retention < 0:
		return fmt.Errorf("%w: negative retention %s", ErrBadWindow, c.retention)
	case c.wallClock < 0:
		return fmt.Errorf("%w: negative wall-clock close delay %s", ErrBadWindow, c.wallClock)
	case c.late != LateDeadLetter && c.late != LateDrop:
		return fmt.Errorf("%w: unknown late policy %d", ErrBadWindow, c.late)
	}
	return nil
}

// wallCloseInterval is how often the wall-clock close runs: every after/2, at
// least once a second, at most once a millisecond.
func wallCloseInterval(after time.Duration) time.Duration {
	return max(min(after/2, time.Second), time.Millisecond)
}

// watermark returns the time up to which windows are closed (a window is
// closed when its end plus grace is at or before it): the larger of the
// stream time (of the sub-topology, in the task) and the closed mark; and the mark (ok false: none).
func (a *timeWindowed[K, V, A]) watermark(c *topology.Call) (wm, mark time.Time, ok bool, err error) {
	mark, ok, err = a.store.Mark(c, timeMarkClosed)
	wm = c.StreamTime()
	if ok && mark.After(wm) {
		wm = mark
	}
	return wm, mark, ok, err
}

// process folds one record into its open windows, then closes the windows
// that stream time (this record's included) passed, in the same call and
// so in the same transaction.
func (a *timeWindowed[K, V, A]) process(c *topology.Call, r topology.Record[K, V]) error {
	if a.keyNil(r.Key) || a.valNil(r.Value) {
		return nil
	}
	wm, mark, marked, err := a.watermark(c)
	if err != nil {
		return err
	}
	var open int
	err = a.w.forEach(r.Timestamp, func(w topology.Window) error {
		if !w.End.Add(a.cfg.grace).After(wm) {
			return nil // closed
		}
		open++
		return a.update(c, r, w)
	})
	if err != nil {
		return err
	}
	if open == 0 {
		if a.cfg.late == LateDrop {
			c.Count(EventLateDropped, 1)
			return nil
		}
		return fmt.Errorf("%w: timestamp %s, closed up to %s (grace %s)", ErrLate,
			r.Timestamp.UTC().Format(time.RFC3339Nano), wm.UTC().Format(time.RFC3339Nano), a.cfg.grace)
	}
	return a.advance(c, wm, mark, marked)
}

// update folds r into window w and forwards the new value unless only
// finals are emitted.
func (a *timeWindowed[K, V, A]) update(c *topology.Call, r topology.Record[K, V], w topology.Window) error {
	old, found, err := a.store.Get(c, r.Key, w)
	if err != nil {
		return err
	}
	agg := a.step(r.Key, r.Value, old, found)
	out := topology.Record[topology.Windowed[K], A]{Key: topology.Windowed[K]{Key: r.Key, Window: w}, Value: agg, Timestamp: r.Timestamp, Headers: r.Headers}
	deleted := a.aggNil(agg)
	if deleted {
		err = a.store.Delete(c, r.Key, w)
	} else {
		err = a.store.Put(c, r.Key, w, agg)
	}
	if err != nil || a.cfg.final {
		return err
	}
	return a.t.push(c, out, deleted)
}

// advance closes what watermark wm closes, given the closed mark: with
// EmitFinal it emits each closed window's final value (timestamped its
// last millisecond, end - 1 ms) and deletes it; otherwise it deletes the
// windows past retention.
func (a *timeWindowed[K, V, A]) advance(c *topology.Call, wm, mark time.Time, marked bool) error {
	if a.cfg.final {
		return a.sweep(c, timeMarkClosed, a.cfg.grace, wm, mark, marked, func(w topology.Windowed[K], v A) error {
			return a.t.push(c, topology.Record[topology.Windowed[K], A]{Key: w, Value: v, Timestamp: w.Window.End.Add(-time.Millisecond)}, false)
		})
	}
	exp, ok, err := a.store.Mark(c, timeMarkExpired)
	if err != nil {
		return err
	}
	return a.sweep(c, timeMarkExpired, max(a.cfg.retention, a.cfg.grace), wm, exp, ok, nil)
}

// sweep deletes (and passes to emit, if not nil) every window whose end
// plus lag is at or before wm, and moves the mark name from mark to wm.
// Every window whose end plus lag was at or before mark is already gone,
// so it reads only the windows that ended since; and it does nothing, not
// even write the mark, when no window can end in between: windows end on
// a grid (size plus a multiple of advance), so most records cross none.
func (a *timeWindowed[K, V, A]) sweep(c *topology.Call, name string, lag time.Duration, wm, mark time.Time, marked bool,
	emit func(topology.Windowed[K], A) error) error {
	if marked && !a.w.endsIn(mark.Add(-lag), wm.Add(-lag)) {
		return nil
	}
	fn := func(w topology.Windowed[K], v A) (bool, error) {
		if err := a.store.Delete(c, w.Key, w.Window); err != nil {
			return false, err
		}
		if emit == nil {
			return true, nil
		}
		return true, emit(w, v)
	}
	var err error
	if marked {
		err = a.store.EndedBetween(c, mark.Add(-lag), wm.Add(-lag), fn)
	} else {
		err = a.store.Ended(c, wm.Add(-lag), fn)
	}
	if err != nil {
		return err
	}
	return a.store.SetMark(c, name, wm)
}

// wallClose closes, on the wall clock, the windows whose end plus grace is
// at or before at - after, and raises the closed mark so that records for
// them are late from now on.
func (a *timeWindowed[K, V, A]) wallClose(c *topology.Call, at time.Time) error {
	wm := at.Add(-a.cfg.wallClock)
	old, mark, marked, err := a.watermark(c)
	if err != nil || !wm.After(old) {
		return err
	}
	if !a.cfg.final && (!marked || a.w.endsIn(mark.Add(-a.cfg.grace), wm.Add(-a.cfg.grace))) {
		if err := a.store.SetMark(c, timeMarkClosed, wm); err != nil {
			return err
		}
	}
	return a.advance(c, wm, mark, marked)
}
