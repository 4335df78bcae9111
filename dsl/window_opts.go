package dsl

import (
	"errors"
	"time"
)

// ErrLate is wrapped by the error of a record that falls only in windows
// already closed (its window's end plus grace is at or before the task's
// stream time, or a wall-clock close passed it). With LateDeadLetter (the
// default) the record goes to the dead-letter topic with this error.
var ErrLate = errors.New("dsl: record for a window already closed")

// LatePolicy says what a windowed aggregation does with a late record.
type LatePolicy int

const (
	// LateDeadLetter sends a late record to the dead-letter topic, in the
	// same transaction, with an error wrapping ErrLate: nothing is lost
	// silently.
	LateDeadLetter LatePolicy = iota
	// LateDrop skips a late record, as Kafka Streams does, and counts it
	// as the event EventLateDropped of the aggregation's node (in
	// processor.Stats.Events and exactly_topology_events_total).
	LateDrop
)

// EventLateDropped is the event a windowed aggregation counts
// (topology.Call.Count) for each late record it drops under LateDrop.
const EventLateDropped = "late-dropped"

// WindowOpt configures a windowed aggregation.
type WindowOpt interface{ applyWindow(*windowCfg) }

type windowCfg struct {
	grace     time.Duration
	final     bool
	wallClock time.Duration // > 0: close on the wall clock this long after end + grace
	late      LatePolicy
	retention time.Duration // 0: end + grace (updates); how long a closed window stays queryable
	opts      []Opt         // naming
}

type windowOpt func(*windowCfg)

func (o windowOpt) applyWindow(c *windowCfg) { o(c) }

// Grace sets how long after a window's end records for it are still
// accepted (measured in stream time): out-of-order records within grace
// update the window; later ones are late. The default is 0.
func Grace(d time.Duration) WindowOpt { return windowOpt(func(c *windowCfg) { c.grace = d }) }

// EmitFinal makes the aggregation emit one record per window, its final
// value, in the transaction in which stream time passes the window's end
// plus grace (Kafka Streams' suppress(untilWindowCloses) and
// EmitStrategy.onWindowClose). A crash never emits a window twice or loses
// one: the emit and the window's deletion from the store commit together.
// Without it, every update is emitted.
func EmitFinal() WindowOpt { return windowOpt(func(c *windowCfg) { c.final = true }) }

// CloseOnWallClock also closes windows on the wall clock: a window whose
// end plus grace plus after has passed on the wall clock is closed even if
// stream time has not reached it, so a partition that received
// its last record still emits its last windows (checked every after/2, at
// least every second). Records that arrive later for a window closed so
// are late. It assumes event time follows the wall clock: records more
// than after plus grace plus the window's size behind the wall clock are
// late once the close has run, so a replay of old input with it is
// dead-lettered (or dropped) as late.
func CloseOnWallClock(after time.Duration) WindowOpt {
	return windowOpt(func(c *windowCfg) { c.wallClock = after })
}

// Late sets the late-record policy (default LateDeadLetter).
func Late(p LatePolicy) WindowOpt { return windowOpt(func(c *windowCfg) { c.late = p }) }

// Retention keeps closed windows in the store, queryable, until stream
// time passes their end by d (at least grace). It applies to the
// update-emitting strategy; EmitFinal deletes a window when it emits it.
func Retention(d time.Duration) WindowOpt { return windowOpt(func(c *windowCfg) { c.retention = d }) }

// WindowNamed names the windowed aggregation (and its store), as Named does
// for other operators.
func WindowNamed(name string) WindowOpt {
	return windowOpt(func(c *windowCfg) { c.opts = append(c.opts, Named(name)) })
}

func windowConfig(opts []WindowOpt) windowCfg {
	var c windowCfg
	for _, o := range opts {
		o.applyWindow(&c)
	}
	return c
}
