package processor

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/exactly-stream/exactly/state"
)

// Several transaction loops in one instance (Loops, the Java
// num.stream.threads).
//
// The Processor that New returns for Loops(n > 1) runs n Processors, its
// loops, and answers for them (Stats, queries, readiness). Each loop is a
// group member of its own: its own GroupTransactSession, transactional ID
// and instance ID, tasks, restore client and transaction bookkeeping, all
// of it as for an instance of one loop. What they share is the instance's:
// the Pebble database (opened once by the runner), the global store
// replicas (loop 0 reads the global topics; the others wait until it has
// bootstrapped them), an operator reset (loop 0 does it; the others start
// once it is done), and the hooks.
//
// Sharing the database adds one interleaving that separate instances do
// not have: a partition that moves from loop A to loop B of the same
// instance. B restores it from the local checkpoint that A's last commit
// left, so A's last commit must be applied before B reads it. kgo holds a
// revoke behind End, so a commit of A that includes the partition happens
// before A's revoke, which happens before B is assigned the partition; A
// holds its applyMu from before End until the commit is applied, and B's
// restore waits for every loop's applyMu (restoreAssigned), as a single
// loop's restore waits for its own. A partition lost rather than revoked
// (A left the group) cannot be committed by A afterwards: its offsets
// commit carries a generation the group no longer has.
type loopShared struct {
	loops []*Processor
	db    *state.DB // opened by the runner before the loops start

	opened  chan struct{} // closed once loop 0 opened (reset, topics)
	globals chan struct{} // closed once loop 0 bootstrapped the global stores
}

// waitApplies waits until no commit is being applied to the local state
// that a restore is about to read: its own loop's, or every loop's when
// the database is shared.
func (p *Processor) waitApplies() {
	loops := []*Processor{p}
	if p.shared != nil {
		loops = p.shared.loops
	}
	for _, l := range loops {
		l.tasks.applyMu.Lock()
		//lint:ignore SA2001 an empty critical section: waiting for the holder is the point
		l.tasks.applyMu.Unlock()
	}
}

// runLoops is Run for an instance of several loops: it opens the state,
// starts the loops (after an operator reset, the others once loop 0 has
// done it), and returns when all have returned; the first to fail stops
// the others.
func (p *Processor) runLoops(ctx context.Context) error {
	ctx, done, err := p.begin(ctx)
	if err != nil {
		return err
	}
	defer close(done)
	db, err := p.openState()
	if err != nil {
		return err
	}
	p.db.Store(db)
	defer func() {
		if err := db.Close(); err != nil {
			p.cfg.logger.Error("closing state", "err", err)
		}
	}()
	sh := p.loops[0].shared
	sh.db = db
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(p.loops))
	var wg sync.WaitGroup
	start := func(i int) {
		wg.Go(func() {
			errs[i] = p.loops[i].Run(ctx)
			cancel() // a loop returns when stopped or failed: stop them all
		})
	}
	start(0)
	if p.cfg.resetState {
		// The reset is loop 0's alone: the others join once it is done.
		select {
		case <-sh.opened:
		case <-ctx.Done():
		}
	}
	if ctx.Err() == nil {
		// Together, so that the group's first rebalance already has
		// them all.
		for i := 1; i < len(p.loops); i++ {
			start(i)
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitGlobals makes a loop other than loop 0 wait until loop 0 has
// bootstrapped the global stores. It reports false when ctx ended first.
func (p *Processor) waitGlobals(ctx context.Context) bool {
	select {
	case <-p.shared.globals:
		return true
	case <-ctx.Done():
		return false
	}
}

// loopsStats sums the loops' Stats.
func (p *Processor) loopsStats() Stats {
	var out Stats
	for _, l := range p.loops {
		s := l.Stats()
		out.Committed += s.Committed
		out.Aborted += s.Aborted
		out.Records += s.Records
		out.DeadLettered += s.DeadLettered
		out.Skipped += s.Skipped
		out.Restored += s.Restored
		out.Restores += s.Restores
		out.SessionRestart += s.SessionRestart
		for e, n := range s.Events {
			if out.Events == nil {
				out.Events = make(map[Event]int64)
			}
			out.Events[e] += n
		}
	}
	return out
}

// loopsQuery asks each loop in turn: the one that owns the key's partition
// answers. When none does, the first loop's *NotOwnerError says which
// member owns it (possibly one of these loops, mid-rebalance).
func loopsQuery[T any](p *Processor, global bool, ask func(l *Processor) (T, error)) (T, error) {
	if global {
		return ask(p.loops[0]) // loop 0 keeps the replicas
	}
	var firstV T
	var first error
	for i, l := range p.loops {
		v, err := ask(l)
		if !errors.Is(err, ErrNotOwner) {
			return v, err
		}
		if i == 0 {
			firstV, first = v, err
		}
	}
	return firstV, first
}

// loopsReady reports whether every loop is ready.
func (p *Processor) loopsReady() bool {
	for _, l := range p.loops {
		if !l.Ready() {
			return false
		}
	}
	return true
}

// loopsAssigned merges the loops' tasks, sorted by partition.
func (p *Processor) loopsAssigned() Tasks {
	var out Tasks
	for _, l := range p.loops {
		out = append(out, l.Assigned()...)
	}
	slices.SortFunc(out, func(a, b Task) int { return int(a.Partition) - int(b.Partition) })
	return out
}

// loopsLag merges the loops' lags.
func (p *Processor) loopsLag() map[int32]int64 {
	out := make(map[int32]int64)
	for _, l := range p.loops {
		maps.Copy(out, l.Lag())
	}
	return out
}

// loopsQueryWindows is QueryWindows over the loops.
func (p *Processor) loopsQueryWindows(ctx context.Context, store string, key []byte, from, to time.Time, opts []QueryOpt) ([]WindowValue, QueryResult, error) {
	type answer struct {
		ws []WindowValue
		r  QueryResult
	}
	a, err := loopsQuery(p, false, func(l *Processor) (answer, error) {
		ws, r, err := l.QueryWindows(ctx, store, key, from, to, opts...)
		return answer{ws, r}, err
	})
	return a.ws, a.r, err
}
