package processor

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/exactly-stream/exactly/internal/taskrun"
)

// tasks tracks which input partitions this instance owns and which of them
// are restored and may be processed. The group callbacks write it; the
// transaction loop and the queries (Assigned, Ready, Query, Lag) read it.
//
// The callbacks are not a complete record of ownership. kgo's
// GroupTransactSession (v1.22.2, pkg/kgo/txn.go, the `if s.revoked { return
// }` at the top of the OnPartitionsRevoked wrapper in
// NewGroupTransactSession, and `if s.lost { return }` for OnPartitionsLost)
// drops every revoke callback after the first until End resets its flag, and
// an idle loop calls no End. So nothing here trusts that a revoke was heard:
//
//   - every partition of an assign callback is restored from its local
//     checkpoint before it is ready, whatever tasks believed of it (a
//     restore from a current checkpoint reads nothing);
//   - ownership is reconciled against the client (sync): a partition the
//     client was seen to hold (its committed offsets, which kgo prunes on
//     every revoke, delivered or not) and no longer holds was revoked;
//   - the loop ends the session's transaction state (End with nothing open)
//     as soon as a revoke was heard, so that the next revoke is heard too
//     and the next transaction does not abort for a revoke that completed
//     before it began.
type tasks struct {
	mu struct {
		sync.Mutex
		members  map[string]bool // group member IDs this process's sessions had
		assigned map[int32]*task
		joined   bool                          // an assignment arrived in this session
		owned    func() (map[int32]bool, bool) // the client's partitions; false: unknown
		wake     context.CancelFunc            // ends the loop's current poll
		stable   map[topicPart]int64           // last stable offset seen by fetches, per input partition
		consumed map[topicPart]int64           // next input offset after the last commit, per input partition
		fatal    error
	}
	// revokes counts the revoke and lost callbacks that made kgo's session
	// doom the open transaction (and drop later callbacks until End).
	revokes atomic.Int64
	// applyMu is held by the loop from the end of a transaction until its
	// staged batch is applied, and taken by a restore before it reads the
	// local checkpoint: a commit that a revoke waited for (kgo holds the
	// revoke behind End) is applied before the partition's next restore,
	// never concurrently with it.
	applyMu sync.Mutex
	syncMu  sync.Mutex // serializes sync
	// onRevoked reports partitions found revoked by sync (their callback
	// was dropped). It runs without tasks' lock.
	onRevoked func(parts []int32)
}

// task is one assigned input partition.
type task struct {
	ready bool // restored: its records may be processed
	seen  bool // the client was seen to hold it since its assignment
	// clock is the task's committed clock, loaded by the loop on first
	// use after the assignment (a new assignment starts a new task).
	clock *taskrun.Clock
}

func newTasks() *tasks {
	t := &tasks{}
	t.mu.assigned = make(map[int32]*task)
	t.mu.stable = make(map[topicPart]int64)
	t.mu.consumed = make(map[topicPart]int64)
	t.mu.members = make(map[string]bool)
	return t
}

// joinedAs remembers a group member ID of this process (reset keeps them).
func (t *tasks) joinedAs(member string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.members[member] = true
}

func (t *tasks) ownMember(member string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.members[member]
}

// follow makes sync reconcile against owned, the partitions the session's
// client holds; nil stops following (the session ended).
func (t *tasks) follow(owned func() (map[int32]bool, bool)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.owned = owned
}

// isReady reports whether p's records may be processed. It does not sync:
// the loop syncs once per poll, not per record.
func (t *tasks) isReady(p int32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.mu.assigned[p]
	return ts != nil && ts.ready
}

// setReady marks an assigned partition restored. A partition no longer
// assigned stays unassigned.
func (t *tasks) setReady(p int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ts := t.mu.assigned[p]; ts != nil {
		ts.ready = true
	}
}

// reset forgets the assignment: the session ended.
func (t *tasks) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.mu.assigned)
	t.mu.joined = false
	t.mu.owned = nil
}

// assign records newly assigned partitions as not ready, whether or not
// tasks believed it still owned them: each is restored before it is ready.
func (t *tasks) assign(parts []int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.joined = true
	for _, p := range parts {
		t.mu.assigned[p] = &task{}
	}
}

// revoke forgets revoked or lost partitions.
func (t *tasks) revoke(parts []int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range parts {
		delete(t.mu.assigned, p)
	}
}

// revoked counts a revoke that dooms the open transaction and wakes the
// loop, which then ends the session's transaction state.
func (t *tasks) revoked() {
	t.revokes.Add(1)
	t.mu.Lock()
	wake := t.mu.wake
	t.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// setWake registers the cancel function of the loop's current poll (nil:
// not polling).
func (t *tasks) setWake(cancel context.CancelFunc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.wake = cancel
}

// sync reconciles the assignment with the client: a partition the client
// was seen to hold and holds no more was revoked without a callback. It
// returns those partitions, and reports them to onRevoked. The client is
// asked without tasks' lock (kgo runs the callbacks, which take it, under
// locks of its own); syncMu keeps two syncs from applying answers out of
// order.
func (t *tasks) sync() []int32 {
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	t.mu.Lock()
	owned := t.mu.owned
	t.mu.Unlock()
	if owned == nil {
		return nil
	}
	held, ok := owned()
	if !ok {
		return nil
	}
	t.mu.Lock()
	gone := t.reconcileLocked(held)
	t.mu.Unlock()
	if len(gone) > 0 && t.onRevoked != nil {
		t.onRevoked(gone)
	}
	return gone
}

func (t *tasks) reconcileLocked(held map[int32]bool) []int32 {
	var gone []int32
	for p, ts := range t.mu.assigned {
		switch {
		case held[p]:
			ts.seen = true
		case ts.seen:
			delete(t.mu.assigned, p)
			gone = append(gone, p)
		}
	}
	slices.Sort(gone)
	return gone
}

// allReady reports whether the instance is in a group session and every
// partition assigned to it is restored.
func (t *tasks) allReady() bool {
	t.sync()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.mu.joined || t.mu.fatal != nil {
		return false
	}
	for _, ts := range t.mu.assigned {
		if !ts.ready {
			return false
		}
	}
	return true
}

// readyNow syncs, then reports whether p's records may be processed: for
// queries from other goroutines.
func (t *tasks) readyNow(p int32) bool {
	t.sync()
	return t.isReady(p)
}

// clock returns the committed clock of p's task (nil: not loaded yet, or
// not assigned).
func (t *tasks) clock(p int32) *taskrun.Clock {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ts := t.mu.assigned[p]; ts != nil {
		return ts.clock
	}
	return nil
}

// setClock sets the committed clock of p's task, if p is assigned.
func (t *tasks) setClock(p int32, c *taskrun.Clock) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ts := t.mu.assigned[p]; ts != nil {
		ts.clock = c
	}
}

// readyParts returns the assigned partitions that are ready, in order. It
// does not sync.
func (t *tasks) readyParts() []int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int32
	for p, ts := range t.mu.assigned {
		if ts.ready {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (t *tasks) assignedParts() []int32 {
	t.sync()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]int32, 0, len(t.mu.assigned))
	for p := range t.mu.assigned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// sawStable records a last stable offset a fetch (or ListOffsets) saw. It
// only moves forward: a fetch response older than a ListOffsets answer
// may arrive after it (order.ready relies on the newer one).
func (t *tasks) sawStable(topic string, p int32, lso int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tp := topicPart{topic, p}
	if cur, ok := t.mu.stable[tp]; !ok || lso > cur {
		t.mu.stable[tp] = lso
	}
}

// stableOf returns the last stable offset the fetches (or the broker,
// asked by order.position) saw for tp.
func (t *tasks) stableOf(tp topicPart) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lso, ok := t.mu.stable[tp]
	return lso, ok
}

func (t *tasks) committedUpTo(topic string, p int32, next int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.consumed[topicPart{topic, p}] = next
}

// lag returns, per assigned partition, how far the last commit is behind
// the last stable offset the fetches saw, summed over the task's input
// topics (repartition topics included). Commit markers take offsets too,
// so a caught-up transactional input may show 1.
func (t *tasks) lag() map[int32]int64 {
	t.sync()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int32]int64, len(t.mu.assigned))
	for tp, lso := range t.mu.stable {
		if _, ok := t.mu.assigned[tp.part]; ok {
			out[tp.part] += max(lso-t.mu.consumed[tp], 0)
		}
	}
	return out
}

func (t *tasks) setFatal(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.fatal == nil {
		t.mu.fatal = err
	}
}

func (t *tasks) fatal() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.fatal
}
