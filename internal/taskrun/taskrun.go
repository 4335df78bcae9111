// Package taskrun is the per-task code shared by the processor and the
// broker-free test driver (topologytest): one input record or one
// punctuation run through a topology, its state writes and outputs held
// until it succeeds, so that a bad record leaves nothing in the transaction
// but its dead-letter record; and the task's clock (stream time, punctuator
// schedules).
//
// Where the effects go is the caller's: a Txn, the processor's open Kafka
// transaction or the driver's in-memory one.
package taskrun

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// Dead-letter headers: where the bad record came from and why it failed.
const (
	HeaderError     = "exactly.error"
	HeaderTopic     = "exactly.source.topic"
	HeaderPartition = "exactly.source.partition"
	HeaderOffset    = "exactly.source.offset"
)

// Output is one record a task produces.
type Output struct {
	Topic     string
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   []topology.Header
}

// Txn receives a task's effects once a record or punctuation succeeded.
// Put and Delete stage a store write (and its changelog record); Emit
// produces an output; from is the input record it came from, nil for a
// punctuation.
type Txn interface {
	Get(store string, part int32, key []byte) ([]byte, bool, error)
	Range(store string, part int32, lo, hi []byte, fn func(key, value []byte) bool) error
	Put(store string, part int32, key, value []byte) error
	Delete(store string, part int32, key []byte) error
	Emit(out *Output, from *topology.Input)
	// Count adds n to the count of event at node (topology.Call.Count).
	Count(node, event string, n int64)
}

// Runtime implements topology.Runtime for one record or punctuation of a
// task. Its writes and emits are held back until Flush, so a record that
// fails leaves no trace in the transaction. The zero value is ready for
// Reset; reusing one Runtime across records saves allocations.
type Runtime struct {
	txn    Txn
	topo   *topology.Topology // set by Task: routes global stores
	part   int32
	ops    []stateOp
	emits  []Output
	counts []count
}

type count struct {
	node, event string
	n           int64
}

type stateOp struct {
	store string
	key   []byte
	value []byte
	del   bool
}

// Reset drops whatever is held and scopes the Runtime to partition part of
// txn.
func (rt *Runtime) Reset(txn Txn, part int32) {
	rt.txn, rt.part = txn, part
	clear(rt.ops)
	rt.ops = rt.ops[:0]
	clear(rt.emits)
	rt.emits = rt.emits[:0]
	rt.counts = rt.counts[:0]
}

// Count holds an event count until Flush (topology.Counter).
func (rt *Runtime) Count(node, event string, n int64) {
	rt.counts = append(rt.counts, count{node, event, n})
}

// Get reads the record's own writes first, then the transaction's.
func (rt *Runtime) Get(store string, key []byte) ([]byte, bool, error) {
	for i := len(rt.ops) - 1; i >= 0; i-- {
		op := &rt.ops[i]
		if op.store == store && string(op.key) == string(key) {
			return op.value, !op.del, nil
		}
	}
	return rt.txn.Get(store, rt.partOf(store), key)
}

// GlobalPartition is the state partition that holds a global store's data
// (topology.GlobalStore): one copy of the whole topic, whatever the task.
const GlobalPartition int32 = 0

// partOf returns the state partition a read of store goes to: the task's,
// or GlobalPartition for a global store.
func (rt *Runtime) partOf(store string) int32 {
	if rt.topo != nil && rt.topo.IsGlobalStore(store) {
		return GlobalPartition
	}
	return rt.part
}

// Range merges the record's own writes in [lo, hi) (the last per key
// wins) over the transaction's range: it sees what Get would, in key
// order. Writes made while it runs are not seen by it.
func (rt *Runtime) Range(store string, lo, hi []byte, fn func(key, value []byte) bool) error {
	held := rt.heldIn(store, lo, hi)
	stopped := false
	err := rt.txn.Range(store, rt.partOf(store), lo, hi, func(k, v []byte) bool {
		for len(held) > 0 && bytes.Compare(held[0].key, k) <= 0 {
			op := held[0]
			held = held[1:]
			if !op.del && !fn(op.key, op.value) {
				stopped = true
				return false
			}
			if bytes.Equal(op.key, k) {
				return true // the record's write hides the transaction's
			}
		}
		if !fn(k, v) {
			stopped = true
			return false
		}
		return true
	})
	if err != nil || stopped {
		return err
	}
	for _, op := range held {
		if !op.del && !fn(op.key, op.value) {
			break
		}
	}
	return nil
}

// heldIn returns the record's own last write of each key of store in
// [lo, hi), in key order.
func (rt *Runtime) heldIn(store string, lo, hi []byte) []stateOp {
	var held []stateOp
	var seen map[string]bool
	for i := len(rt.ops) - 1; i >= 0; i-- {
		op := rt.ops[i]
		if op.store != store || bytes.Compare(op.key, lo) < 0 || (hi != nil && bytes.Compare(op.key, hi) >= 0) || seen[string(op.key)] {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool)
		}
		seen[string(op.key)] = true
		held = append(held, op)
	}
	slices.SortFunc(held, func(a, b stateOp) int { return bytes.Compare(a.key, b.key) })
	return held
}

// Put holds a write until Flush.
func (rt *Runtime) Put(store string, key, value []byte) error {
	rt.ops = append(rt.ops, stateOp{store: store, key: key, value: value})
	return nil
}

// Delete holds a delete until Flush.
func (rt *Runtime) Delete(store string, key []byte) error {
	rt.ops = append(rt.ops, stateOp{store: store, key: key, del: true})
	return nil
}

// Emit holds an output record until Flush.
func (rt *Runtime) Emit(topic string, key, value []byte, ts time.Time, hdrs []topology.Header) error {
	rt.emits = append(rt.emits, Output{Topic: topic, Key: key, Value: value, Timestamp: ts, Headers: hdrs})
	return nil
}

// Flush moves the held effects into the transaction, in order: writes,
// then outputs. It returns how many outputs it emitted.
func (rt *Runtime) Flush(from *topology.Input) (int, error) {
	for i := range rt.ops {
		op := &rt.ops[i]
		var err error
		if op.del {
			err = rt.txn.Delete(op.store, rt.part, op.key)
		} else {
			err = rt.txn.Put(op.store, rt.part, op.key, op.value)
		}
		if err != nil {
			return 0, err
		}
	}
	for i := range rt.emits {
		rt.txn.Emit(&rt.emits[i], from)
	}
	for _, c := range rt.counts {
		rt.txn.Count(c.node, c.event, c.n)
	}
	return len(rt.emits), nil
}

// Task runs one task's records and punctuations. It is not safe for
// concurrent use.
type Task struct {
	Topo  *topology.Topology
	Part  int32
	Clock *Clock
	rt    Runtime
}

// Result says what became of one record.
type Result struct {
	// Bad is set when the record is bad input (a decode or process error):
	// nothing of it reached the transaction; the caller applies its error
	// policy (DeadLetter builds the dead-letter record).
	Bad error
	// Outputs counts the outputs the record and the punctuations it caused
	// emitted.
	Outputs int
}

// Process runs one input record of the task in txn, then the stream-time
// punctuators its timestamp made due. A returned error (a runtime or usage
// error, or a punctuator's) must abort the transaction.
func (t *Task) Process(ctx context.Context, txn Txn, in *topology.Input) (Result, error) {
	t.rt.topo = t.Topo
	t.rt.Reset(txn, t.Part)
	sub := t.Topo.Subtopology(in.Topic)
	in.StreamTime = t.Clock.StreamOf(sub)
	err := t.Topo.Dispatch(ctx, &t.rt, in)
	switch {
	case err == nil:
	case topology.IsBadRecord(err):
		t.rt.Reset(txn, t.Part)
		return Result{Bad: err}, nil
	default:
		return Result{}, err
	}
	n, err := t.rt.Flush(in)
	if err != nil {
		return Result{}, err
	}
	if sub >= 0 {
		t.Clock.Streams[sub] = in.StreamTime
	}
	m, err := t.punctuate(ctx, txn, t.Clock.dueStream())
	return Result{Outputs: n + m}, err
}

// PunctuateWall runs the wall-clock punctuators due at now. It returns how
// many outputs they emitted.
func (t *Task) PunctuateWall(ctx context.Context, txn Txn, now time.Time) (int, error) {
	return t.punctuate(ctx, txn, t.Clock.dueWall(now))
}

func (t *Task) punctuate(ctx context.Context, txn Txn, due []firing) (int, error) {
	total := 0
	t.rt.topo = t.Topo
	for _, f := range due {
		t.rt.Reset(txn, t.Part)
		if err := t.Topo.Punctuate(ctx, &t.rt, f.name, t.Part, f.at, t.Clock.StreamOf(f.sub)); err != nil {
			return total, err
		}
		n, err := t.rt.Flush(nil)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// DeadLetter returns the dead-letter record of a bad input record: the
// record as it came, its headers followed by the error and the input's
// coordinates.
func DeadLetter(topic string, in *topology.Input, cause error) Output {
	hdrs := append(append([]topology.Header(nil), in.Headers...),
		topology.Header{Key: HeaderError, Value: []byte(cause.Error())},
		topology.Header{Key: HeaderTopic, Value: []byte(in.Topic)},
		topology.Header{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(in.Partition), 10)},
		topology.Header{Key: HeaderOffset, Value: strconv.AppendInt(nil, in.Offset, 10)},
	)
	return Output{Topic: topic, Key: in.Key, Value: in.Value, Headers: hdrs, Timestamp: in.Timestamp}
}
