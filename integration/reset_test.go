package integration

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/processor"
)

// TestOperatorOffsetReset moves the group's committed offsets back (as an
// operator would, with kadm, every instance stopped) while the state is
// ahead of them. Restarted, the instance refuses with ErrStateAhead (exit
// status 1 and the message), and so does a new instance on an empty
// directory, whose changelog restore finds the same thing. `exactly run
// --reset-state` then rebuilds the state from the input from the reset
// offsets on: the local state equals the fold of the orders from those
// offsets (computed here from the orders topic), the events written after
// the reset are that fold's events, and a normal restart afterwards goes on
// from there.
func TestOperatorOffsetReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	group := e.group("order")
	e.produce(1500, 1600, 0)
	dir := filepath.Join(e.root, "a")
	a := e.spawn("a", dir, spawnOpts{})
	e.waitVerified(false, 2*time.Minute)
	a.stop(t)

	reset := e.moveOffsetsBack(group)
	e.produce(300, 1601, 0)

	for _, tc := range []struct{ who, dir string }{
		{"the instance on its own state", dir},
		{"a new instance on an empty directory", filepath.Join(e.root, "fresh")},
	} {
		c := e.spawn("a", tc.dir, spawnOpts{})
		ps := c.wait(t, time.Minute)
		require.Equal(t, 1, ps.ExitCode(), "%s must refuse to run on state ahead of the group's offsets", tc.who)
		require.Contains(t, c.out.String(), processor.ErrStateAhead.Error(), tc.who)
	}

	eventsFrom := e.endOffsets(e.topics.Events)
	r := e.spawn("a", dir, spawnOpts{args: []string{"--reset-state"}})
	e.waitCaughtUp(group, 2*time.Minute)
	r.stop(t)

	// A normal restart after the reset: no refusal, more input.
	e.produce(200, 1602, 0)
	a2 := e.spawn("a", dir, spawnOpts{})
	e.waitCaughtUp(group, 2*time.Minute)
	a2.stop(t)

	fold, events := foldOrders(e.readFrom(e.topics.Orders, reset))
	require.NotEmpty(t, events)
	local, err := orders.CheckLocalState([]string{dir}, partitions, fold)
	require.NoError(t, err)
	require.Empty(t, local, "E4 after the reset: local state must be the fold of the orders from the reset offsets on")
	require.Equal(t, events, eventsByCustomer(e.readFrom(e.topics.Events, eventsFrom)), "the events after the reset must be those of the fold from the reset offsets")

	rep := e.verify(false, 15*time.Second) // E1-E3 cannot hold across a replay; E5 must
	require.Zero(t, rep.Counts[orders.CheckE5], rep.String())
}

// moveOffsetsBack commits, for every orders partition, half of the group's
// committed offset, and returns the new offsets. The group must be empty.
func (e *env) moveOffsetsBack(group string) map[int32]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	committed, err := e.admin.FetchOffsets(ctx, group)
	require.NoError(e.t, err)
	require.NoError(e.t, committed.Error())
	back := make(kadm.Offsets)
	reset := make(map[int32]int64)
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Topic != e.topics.Orders {
			return
		}
		require.Positive(e.t, o.At, "partition %d committed nothing", o.Partition)
		reset[o.Partition] = o.At / 2
		back.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.At / 2, LeaderEpoch: -1})
	})
	require.Len(e.t, reset, partitions)
	resps, err := e.admin.CommitOffsets(ctx, group, back)
	require.NoError(e.t, err)
	require.NoError(e.t, resps.Error())
	return reset
}

// endOffsets returns the high watermark of every partition of topic.
func (e *env) endOffsets(topic string) map[int32]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := exactlytest.EndOffsets(ctx, e.admin, topic)
	require.NoError(e.t, err)
	return ends
}

// readFrom reads topic with read_committed from the given offsets (the
// start of a partition missing from from) to its last stable offsets, and
// returns the data records in partition order (exactlytest.ReadCommitted).
func (e *env) readFrom(topic string, from map[int32]int64) map[int32][]*kgo.Record {
	e.t.Helper()
	cl, err := e.client()
	require.NoError(e.t, err)
	defer cl.Close()
	recs, err := exactlytest.ReadCommitted(context.Background(), cl, topic, exactlytest.ReadOptions{From: from, Timeout: time.Minute})
	require.NoError(e.t, err, "reading %s", topic)
	return recs
}

// foldOrders folds orders as the order service does, from empty state: a
// valid order applies unless its id was applied before (for the same
// customer: an upstream duplicate; for another: dead-lettered). It returns
// the final state and the events per customer, in order.
func foldOrders(recs map[int32][]*kgo.Record) (orders.Expected, map[string][]orders.Event) {
	want := orders.Expected{Customers: make(map[string]orders.Customer), OrderIDs: make(map[string]string)}
	events := make(map[string][]orders.Event)
	for _, p := range slices.Sorted(maps.Keys(recs)) {
		for _, r := range recs[p] {
			o, err := orders.DecodeOrder(r.Value)
			if err != nil || o.Validate(string(r.Key)) != nil {
				continue // malformed: dead-lettered
			}
			if _, seen := want.OrderIDs[o.OrderID]; seen {
				continue
			}
			c := want.Customers[o.CustomerID]
			c.OrderCount++
			c.TotalCents += o.AmountCents
			want.Customers[o.CustomerID] = c
			want.OrderIDs[o.OrderID] = o.CustomerID
			events[o.CustomerID] = append(events[o.CustomerID], orders.Event{
				OrderID: o.OrderID, CustomerID: o.CustomerID, AmountCents: o.AmountCents,
				CustomerOrderCount: c.OrderCount, CustomerTotalCents: c.TotalCents,
			})
		}
	}
	return want, events
}

// eventsByCustomer decodes events and groups them per customer, in
// partition order.
func eventsByCustomer(recs map[int32][]*kgo.Record) map[string][]orders.Event {
	out := make(map[string][]orders.Event)
	for _, p := range slices.Sorted(maps.Keys(recs)) {
		for _, r := range recs[p] {
			ev, err := orders.DecodeEvent(r.Value)
			if err != nil {
				ev = orders.Event{OrderID: "undecodable: " + err.Error(), CustomerID: string(r.Key)}
			}
			out[string(r.Key)] = append(out[string(r.Key)], ev)
		}
	}
	return out
}

// TestResetStateReachesEveryInstance is a regression test. After a state
// reset (processor.ResetState: new changelogs, seeded at the group's
// committed offsets), the other instances restarted on their old state
// directories went on counting from their old state: the ResetState doc
// says their restore wipes it, but restore wiped a partition only when its
// checkpoint lay at or past the new changelog's end. Once the reset
// instance had written a few records, the old checkpoints fell inside the
// new changelog's range, restore read on from there, found the seeded
// offset record at the committed offset and called the stale state
// complete: a key counted 3 times before the reset emitted 4 after it (3
// from a directory that lagged) instead of 1.
//
// A counts every key twice and stops; B, alone, restores everything and
// counts every key once more, and stops: both directories hold state of
// every partition, so whatever split the group makes of them later, each
// partition restores from an old checkpoint. R resets and counts other
// keys of the same partitions; A and B restart together on their old
// directories and count one more record of every key.
func TestResetStateReachesEveryInstance(t *testing.T) {
	e := newEnv(t)
	app := newCounterApp(e, 4)
	old, other := make([]string, app.parts), make([]string, app.parts)
	for p := range app.parts {
		old[p], other[p] = app.keyOn(p, 0), app.keyOn(p, 1)
	}
	a := app.start("a", "a")
	waitSpread(t, time.Minute, map[*inst]int{a: int(app.parts)})
	app.produce(slices.Concat(old, old)...)
	app.waitOutputs(nil, 2*len(old))
	a.close(t)
	app.requireLocal(a, allParts(app.parts), app.fold(nil), "the fold of the input")
	b := app.start("b", "b")
	waitSpread(t, time.Minute, map[*inst]int{b: int(app.parts)})
	app.produce(old...)
	app.waitOutputs(nil, 3*len(old))
	b.close(t)
	app.requireLocal(b, allParts(app.parts), app.fold(nil), "the fold of the input")

	resetAt := e.committedOffsets(app.group, app.in)
	outFrom := e.endOffsets(app.out)
	r := app.start("r", "r", processor.ResetState(true))
	waitSpread(t, time.Minute, map[*inst]int{r: int(app.parts)})
	const otherCount = 10 // enough changelog records to pass A's and B's checkpoints
	var batch []string
	for range otherCount {
		batch = append(batch, other...)
	}
	app.produce(batch...)
	app.waitOutputs(outFrom, len(batch))
	r.close(t)
	app.requireLocal(r, allParts(app.parts), app.fold(resetAt), "the reset instance's state must be the fold of the input from the reset offsets on")
	// The case the bug needs: every old checkpoint inside the new
	// changelog's range, so that no restore sees a recreated changelog.
	newEnds := e.endOffsets(processor.ChangelogTopic(app.group, counterStore))
	for _, in := range []*inst{a, b} {
		for p, cp := range app.checkpoints(in.dir, allParts(app.parts)) {
			require.Less(t, cp, newEnds[p]-1, "setup: %s's checkpoint of partition %d must fall inside the new changelog", in.name, p)
		}
	}

	a, b = app.start("a", "a"), app.start("b", "b")
	after := waitSpread(t, time.Minute, map[*inst]int{a: 2, b: 2})
	app.produce(slices.Concat(old, other)...)
	got := app.waitOutputs(outFrom, len(batch)+2*len(old))
	want := make(map[string]int)
	for p := range app.parts {
		want[old[p]], want[other[p]] = 1, otherCount+1
	}
	assert.Empty(t, countRunViolations(got, want), "after the reset every key must count from 1 again, without gaps or repeats")

	a.close(t)
	b.close(t)
	fold := app.fold(resetAt)
	for _, in := range []*inst{a, b} {
		app.requireLocal(in, after[in], fold, fmt.Sprintf("the fold of the input from the reset offsets %v on", resetAt))
	}
}

// committedOffsets returns group's committed offset of every partition of
// topic.
func (e *env) committedOffsets(group, topic string) map[int32]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := exactlytest.GroupOffsets(ctx, e.admin, group, topic)
	require.NoError(e.t, err)
	return offs
}
