package processor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeClient stands for the session's client: the partitions it holds, as
// its committed offsets show them.
type fakeClient struct {
	mu   sync.Mutex
	held map[int32]bool
}

func (c *fakeClient) owned() (map[int32]bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int32]bool, len(c.held))
	for p := range c.held {
		out[p] = true
	}
	return out, true
}

func (c *fakeClient) set(p int32, held bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if held {
		c.held[p] = true
	} else {
		delete(c.held, p)
	}
}

// taskStep is one event of a task-bookkeeping script:
//
//	assign P      the assign callback for P runs (kgo has not fetched P's offsets yet)
//	fetched P     kgo fetched P's offsets: the client holds P
//	ready P       P's restore finished
//	revoke P      a revoke of P, delivered to the callback
//	unheard P     a revoke of P whose callback kgo dropped
//	lost          the session lost everything, the callback dropped
//	reset         the session ended
//
// and the expectations after it: the assignment, the ready partitions and
// allReady, each read as a query from another goroutine would (with sync).
type taskStep struct {
	do       string
	assigned []int32
	ready    []int32
	allReady bool
}

func runTaskScript(t *testing.T, steps []taskStep) (reportedGone []int32) {
	t.Helper()
	ts := newTasks()
	cl := &fakeClient{held: make(map[int32]bool)}
	ts.follow(cl.owned)
	ts.onRevoked = func(parts []int32) { reportedGone = append(reportedGone, parts...) }
	for i, st := range steps {
		verb, arg, _ := strings.Cut(st.do, " ")
		var p int32
		if arg != "" {
			_, err := fmt.Sscan(arg, &p)
			require.NoError(t, err)
		}
		switch verb {
		case "assign":
			ts.assign([]int32{p})
		case "fetched":
			cl.set(p, true)
		case "ready":
			ts.setReady(p)
		case "revoke":
			cl.set(p, false)
			ts.revoke([]int32{p})
		case "unheard":
			cl.set(p, false)
		case "lost":
			for q := range cl.held {
				cl.set(q, false)
			}
		case "reset":
			ts.reset()
		default:
			t.Fatalf("step %d: unknown %q", i, st.do)
		}
		require.Equal(t, st.assigned, nonNil(ts.assignedParts()), "step %d (%s): assigned", i, st.do)
		var ready []int32
		for _, q := range []int32{0, 1, 2, 3, 4, 5} {
			if ts.readyNow(q) {
				ready = append(ready, q)
			}
		}
		require.Equal(t, st.ready, ready, "step %d (%s): ready", i, st.do)
		require.Equal(t, st.allReady, ts.allReady(), "step %d (%s): allReady", i, st.do)
	}
	return reportedGone
}

func nonNil(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestTaskBookkeeping drives the task bookkeeping through assignments,
// delivered and dropped revokes, losses and re-assignments in many orders.
// kgo's GroupTransactSession drops every revoke callback after the first
// until End, and an idle loop calls no End: before tasks reconciled with the
// client, a partition revoked unheard stayed assigned and ready, and came
// back without a restore (a duplicate output from stale state).
func TestTaskBookkeeping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		steps []taskStep
		gone  []int32 // reported revoked without a callback
	}{
		{name: "assign, restore, fetch", steps: []taskStep{
			{do: "assign 0", assigned: []int32{0}},
			{do: "ready 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
			{do: "fetched 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
		}},
		{name: "not ready while restoring, others stay ready", steps: []taskStep{
			{do: "assign 0", assigned: []int32{0}},
			{do: "ready 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
			{do: "fetched 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
			{do: "assign 1", assigned: []int32{0, 1}, ready: []int32{0}},
			{do: "ready 1", assigned: []int32{0, 1}, ready: []int32{0, 1}, allReady: true},
		}},
		{name: "delivered revoke", steps: []taskStep{
			{do: "assign 0", assigned: []int32{0}},
			{do: "assign 1", assigned: []int32{0, 1}},
			{do: "ready 0", assigned: []int32{0, 1}, ready: []int32{0}},
			{do: "ready 1", assigned: []int32{0, 1}, ready: []int32{0, 1}, allReady: true},
			{do: "fetched 0", assigned: []int32{0, 1}, ready: []int32{0, 1}, allReady: true},
			{do: "fetched 1", assigned: []int32{0, 1}, ready: []int32{0, 1}, allReady: true},
			{do: "revoke 1", assigned: []int32{0}, ready: []int32{0}, allReady: true},
		}},
		{name: "unheard revoke of a held partition", gone: []int32{2}, steps: []taskStep{
			{do: "assign 1", assigned: []int32{1}},
			{do: "assign 2", assigned: []int32{1, 2}},
			{do: "ready 1", assigned: []int32{1, 2}, ready: []int32{1}},
			{do: "ready 2", assigned: []int32{1, 2}, ready: []int32{1, 2}, allReady: true},
			{do: "fetched 1", assigned: []int32{1, 2}, ready: []int32{1, 2}, allReady: true},
			{do: "fetched 2", assigned: []int32{1, 2}, ready: []int32{1, 2}, allReady: true},
			{do: "unheard 2", assigned: []int32{1}, ready: []int32{1}, allReady: true},
		}},
		{name: "unheard revoke, then the partition comes back: restored again", gone: []int32{2}, steps: []taskStep{
			{do: "assign 2", assigned: []int32{2}},
			{do: "ready 2", assigned: []int32{2}, ready: []int32{2}, allReady: true},
			{do: "fetched 2", assigned: []int32{2}, ready: []int32{2}, allReady: true},
			{do: "unheard 2", allReady: true},
			{do: "assign 2", assigned: []int32{2}},
			{do: "fetched 2", assigned: []int32{2}},
			{do: "ready 2", assigned: []int32{2}, ready: []int32{2}, allReady: true},
		}},
		{name: "unheard revoke and re-assignment before any query: still restored", steps: []taskStep{
			{do: "assign 2", assigned: []int32{2}},
			{do: "ready 2", assigned: []int32{2}, ready: []int32{2}, allReady: true},
			{do: "fetched 2", assigned: []int32{2}, ready: []int32{2}, allReady: true},
			// The revoke and the assign both happen before the next
			// query: nothing can see the gap, the assign callback
			// still makes the partition restore.
			{do: "assign 2", assigned: []int32{2}},
			{do: "ready 2", assigned: []int32{2}, ready: []int32{2}, allReady: true},
		}},
		{name: "assigned but offsets not fetched yet: kept", steps: []taskStep{
			{do: "assign 3", assigned: []int32{3}},
			{do: "ready 3", assigned: []int32{3}, ready: []int32{3}, allReady: true},
			{do: "assign 4", assigned: []int32{3, 4}, ready: []int32{3}},
			{do: "fetched 4", assigned: []int32{3, 4}, ready: []int32{3}},
			{do: "ready 4", assigned: []int32{3, 4}, ready: []int32{3, 4}, allReady: true},
		}},
		{name: "delivered revoke, then re-assignment: restored again", steps: []taskStep{
			{do: "assign 0", assigned: []int32{0}},
			{do: "ready 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
			{do: "fetched 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
			{do: "revoke 0", allReady: true},
			{do: "assign 0", assigned: []int32{0}},
			{do: "ready 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
		}},
		{name: "re-assigned while still held (eager, revoke dropped): restored again", steps: []taskStep{
			{do: "assign 0", assigned: []int32{0}},
			{do: "ready 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
			{do: "fetched 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
			{do: "assign 0", assigned: []int32{0}},
			{do: "ready 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
		}},
		{name: "lost unheard", gone: []int32{0, 1}, steps: []taskStep{
			{do: "assign 0", assigned: []int32{0}},
			{do: "assign 1", assigned: []int32{0, 1}},
			{do: "ready 0", assigned: []int32{0, 1}, ready: []int32{0}},
			{do: "ready 1", assigned: []int32{0, 1}, ready: []int32{0, 1}, allReady: true},
			{do: "fetched 0", assigned: []int32{0, 1}, ready: []int32{0, 1}, allReady: true},
			{do: "fetched 1", assigned: []int32{0, 1}, ready: []int32{0, 1}, allReady: true},
			{do: "lost", allReady: true},
			{do: "assign 1", assigned: []int32{1}},
			{do: "ready 1", assigned: []int32{1}, ready: []int32{1}, allReady: true},
		}},
		{name: "session reset", steps: []taskStep{
			{do: "assign 0", assigned: []int32{0}},
			{do: "ready 0", assigned: []int32{0}, ready: []int32{0}, allReady: true},
			{do: "reset"},
		}},
		{name: "ready after a revoke during the restore stays unassigned", steps: []taskStep{
			{do: "assign 5", assigned: []int32{5}},
			{do: "revoke 5", allReady: true},
			{do: "ready 5", allReady: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gone := runTaskScript(t, tc.steps)
			require.Equal(t, tc.gone, gone, "partitions reported revoked without a callback")
		})
	}
}

// TestTaskRevokedWakesThePoll: a revoke counts and ends the loop's current
// poll, so that the loop ends kgo's pending revoke at once.
func TestTaskRevokedWakesThePoll(t *testing.T) {
	t.Parallel()
	ts := newTasks()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ts.setWake(cancel)
	ts.revoked()
	require.Equal(t, int64(1), ts.revokes.Load())
	require.Error(t, ctx.Err(), "the poll must be woken")
	ts.setWake(nil)
	ts.revoked() // no poll: nothing to wake
	require.Equal(t, int64(2), ts.revokes.Load())
}

// TestTaskSyncWithoutAClient: between sessions nothing is reconciled.
func TestTaskSyncWithoutAClient(t *testing.T) {
	t.Parallel()
	ts := newTasks()
	ts.assign([]int32{1})
	require.Empty(t, ts.sync())
	require.True(t, slices.Equal([]int32{1}, ts.assignedParts()))
}
