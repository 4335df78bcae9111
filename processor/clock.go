package processor

import (
	"time"

	"github.com/exactly-stream/exactly/internal/taskrun"
)

// clockOf returns the committed clock of the task of partition part,
// loading it on first use after an assignment: stream time from the local
// state, which the restore brought up to the group's committed
// transactions. Only the transaction loop calls it.
func (p *Processor) clockOf(part int32) *taskrun.Clock {
	if c := p.tasks.clock(part); c != nil {
		return c
	}
	c := taskrun.NewClock(p.topo, p.storedStreamTime(part), time.Now())
	p.tasks.setClock(part, c)
	return c
}

// storedStreamTime returns the stream time of each sub-topology of the
// task: the largest any store of the sub-topology keeps (they are written
// together; a store added since has none), or zero.
func (p *Processor) storedStreamTime(part int32) []time.Time {
	out := make([]time.Time, p.topo.Subtopologies())
	for _, store := range p.topo.StoreNames() {
		sub := p.topo.StoreSubtopology(store)
		if sub < 0 {
			continue
		}
		ns, ok, err := p.db.Load().InputCheckpoint(inputCheckpointName(store, streamTimeTopic), part)
		if err != nil {
			p.cfg.logger.Warn("reading stored stream time; starting without", "store", store, "partition", part, "err", err)
			continue
		}
		if ok && ns > 0 && time.Unix(0, ns).After(out[sub]) {
			out[sub] = time.Unix(0, ns)
		}
	}
	return out
}

// keepClocks makes the clocks of a committed transaction's tasks the
// tasks' committed clocks.
func (p *Processor) keepClocks(t *txn) {
	for part, tk := range t.tasks {
		p.tasks.setClock(part, tk.Clock)
	}
}

// nextWall returns when the next wall-clock punctuator of a ready task is
// due; ok is false when none is scheduled.
func (p *Processor) nextWall() (at time.Time, ok bool) {
	if !p.hasWall {
		return time.Time{}, false
	}
	for _, part := range p.tasks.readyParts() {
		if t, has := p.clockOf(part).NextWall(); has && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	return at, ok
}
