package taskrun

import (
	"maps"
	"slices"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// Clock is a task's time: its stream time per sub-topology and its
// punctuators' schedules. A transaction works on a Clone and keeps it only
// if it commits, so a punctuation of an aborted transaction fires again.
type Clock struct {
	// Streams is the task's stream time per sub-topology (indexed by
	// topology.Subtopology): the largest record timestamp the
	// sub-topology's sources processed (zero: none yet).
	Streams []time.Time
	// fired is, per stream-time punctuator, the interval index (stream
	// time / interval) it last fired for or was set to at start.
	fired map[string]int64
	// next is, per wall-clock punctuator, when it fires next.
	next  map[string]time.Time
	punct []topology.PunctuatorInfo
}

// NewClock returns the clock of a task that starts at wall-clock time now
// with stream times streams, one per sub-topology (a zero or missing one:
// unknown). A stream-time punctuator does not fire for the interval its
// stream time is already in; a wall-clock one fires first one interval
// after now.
func NewClock(topo *topology.Topology, streams []time.Time, now time.Time) *Clock {
	c := &Clock{Streams: make([]time.Time, topo.Subtopologies()), fired: make(map[string]int64), next: make(map[string]time.Time), punct: topo.Punctuators()}
	copy(c.Streams, streams)
	for _, p := range c.punct {
		switch p.Type {
		case topology.StreamTime:
			if st := c.StreamOf(p.Subtopology); !st.IsZero() {
				c.fired[p.Name] = st.UnixNano() / int64(p.Interval)
			}
		case topology.WallClock:
			c.next[p.Name] = now.Add(p.Interval)
		}
	}
	return c
}

// Stream returns the task's stream time: the largest of its
// sub-topologies'.
func (c *Clock) Stream() time.Time {
	var st time.Time
	for _, s := range c.Streams {
		if s.After(st) {
			st = s
		}
	}
	return st
}

// StreamOf returns sub-topology sub's stream time; the task's when sub is
// negative (a punctuator that follows no source).
func (c *Clock) StreamOf(sub int) time.Time {
	if sub < 0 || sub >= len(c.Streams) {
		return c.Stream()
	}
	return c.Streams[sub]
}

// Clone returns an independent copy.
func (c *Clock) Clone() *Clock {
	return &Clock{Streams: slices.Clone(c.Streams), fired: maps.Clone(c.fired), next: maps.Clone(c.next), punct: c.punct}
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
	sub  int // the punctuator's sub-topology (PunctuatorInfo.Subtopology)
}

// dueStream returns the stream-time punctuators whose next interval
// boundary their stream time crossed, and marks them fired. The first
// record of a sub-topology with no known stream time sets the boundary
// without firing.
func (c *Clock) dueStream() []firing {
	var out []firing
	for _, p := range c.punct {
		if p.Type != topology.StreamTime {
			continue
		}
		st := c.StreamOf(p.Subtopology)
		if st.IsZero() {
			continue
		}
		idx := st.UnixNano() / int64(p.Interval)
		last, ok := c.fired[p.Name]
		c.fired[p.Name] = idx
		if ok && idx > last {
			out = append(out, firing{p.Name, time.Unix(0, idx*int64(p.Interval)), p.Subtopology})
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
		out = append(out, firing{p.Name, now, p.Subtopology})
		c.next[p.Name] = now.Add(p.Interval)
	}
	return out
}
