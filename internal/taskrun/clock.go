package taskrun

import (
	"maps"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// Clock is a task's time: its stream time and its punctuators' schedules.
// A transaction works on a Clone and keeps it only if it commits, so a
// punctuation of an aborted transaction fires again.
type Clock struct {
	// Stream is the task's stream time, the largest record timestamp it
	// processed (zero: none yet).
	Stream time.Time
	// fired is, per stream-time punctuator, the interval index (stream
	// time / interval) it last fired for or was set to at start.
	fired map[string]int64
	// next is, per wall-clock punctuator, when it fires next.
	next  map[string]time.Time
	punct []topology.PunctuatorInfo
}

// NewClock returns the clock of a task that starts at wall-clock time now
// with stream time stream (zero when unknown). A stream-time punctuator
// does not fire for the interval stream time is already in; a wall-clock
// one fires first one interval after now.
func NewClock(topo *topology.Topology, stream, now time.Time) *Clock {
	c := &Clock{Stream: stream, fired: make(map[string]int64), next: make(map[string]time.Time), punct: topo.Punctuators()}
	for _, p := range c.punct {
		switch p.Type {
		case topology.StreamTime:
			if !stream.IsZero() {
				c.fired[p.Name] = stream.UnixNano() / int64(p.Interval)
			}
		case topology.WallClock:
			c.next[p.Name] = now.Add(p.Interval)
		}
	}
	return c
}

// Clone returns an independent copy.
func (c *Clock) Clone() *Clock {
	return &Clock{Stream: c.Stream, fired: maps.Clone(c.fired), next: maps.Clone(c.next), punct: c.punct}
}

// NextWall returns when the next wall-clock punctuator is due; ok is false
// when the task has none.
func (c *Clock) NextWall() (at time.Time, ok bool) {
	for _, t := range c.next {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	return at, ok
}

type firing struct {
	name string
	at   time.Time
}

// dueStream returns the stream-time punctuators whose next interval
// boundary stream time crossed, and marks them fired. The first record of
// a task with no known stream time sets the boundary without firing.
func (c *Clock) dueStream() []firing {
	if c.Stream.IsZero() {
		return nil
	}
	var out []firing
	for _, p := range c.punct {
		if p.Type != topology.StreamTime {
			continue
		}
		idx := c.Stream.UnixNano() / int64(p.Interval)
		last, ok := c.fired[p.Name]
		c.fired[p.Name] = idx
		if ok && idx > last {
			out = append(out, firing{p.Name, time.Unix(0, idx*int64(p.Interval))})
		}
	}
	return out
}

// dueWall returns the wall-clock punctuators due at now and schedules
// their next firing one interval after now.
func (c *Clock) dueWall(now time.Time) []firing {
	var out []firing
	for _, p := range c.punct {
		if p.Type != topology.WallClock || now.Before(c.next[p.Name]) {
			continue
		}
		out = append(out, firing{p.Name, now})
		c.next[p.Name] = now.Add(p.Interval)
	}
	return out
}
