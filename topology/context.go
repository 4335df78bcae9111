package topology

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Runtime is what a Topology needs from whatever runs it. The processor
// package implements it per task (input partition): store reads and writes
// are scoped to the task's partition and staged in the open transaction;
// Emit produces into that transaction.
//
// An error from a Runtime method is a failure of the runtime, not of the
// record: Dispatch reports it as a *RuntimeError even if a processor swallowed
// it. The key, value and header slices passed to Put, Delete and Emit belong
// to the Runtime from then on (it holds them until the record is produced):
// callers pass slices nothing else changes, as Serde.Encode returns them.
type Runtime interface {
	Get(store string, key []byte) (value []byte, ok bool, err error)
	// Range calls fn in key order for every key of store in [lo, hi) (nil
	// lo: from the first key, nil hi: to the last) as Get would read it,
	// until fn returns false. key and value are valid only during the
	// call; writes made while Range runs need not be seen by it.
	Range(store string, lo, hi []byte, fn func(key, value []byte) bool) error
	Put(store string, key, value []byte) error
	Delete(store string, key []byte) error
	Emit(topic string, key, value []byte, ts time.Time, headers []Header) error
}

// Counter is implemented by a Runtime that keeps a topology's event
// counts (Call.Count): the processor's counts them when the transaction
// commits and reports them in Stats and as a Prometheus counter.
type Counter interface {
	Count(node, event string, n int64)
}

// Input is one raw input record handed to Dispatch.
type Input struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   []Header
	// StreamTime is the stream time of the sub-topology of the record's
	// source (Subtopology) in its task, before this record. Dispatch
	// advances it to the record's timestamp (as the source's extractor
	// gives it) when that is later and the record succeeds.
	StreamTime time.Time
}

// Call is passed to processors. It carries the input record's
// coordinates and routes store access and sends through the Runtime. A
// Call is valid only during the call it was passed to.
type Call struct {
	ctx    context.Context
	rt     Runtime
	t      *Topology
	in     *Input
	node   *node
	ts     time.Time
	stream time.Time   // the sub-topology's stream time, this record included
	rtErr  error       // first Runtime failure; it wins over whatever the processor returned
	useErr *UsageError // first undeclared access; it wins over all but rtErr
}

// Context returns the context of the Dispatch call.
func (c *Call) Context() context.Context { return c.ctx }

// Topic returns the input record's topic.
func (c *Call) Topic() string { return c.in.Topic }

// Partition returns the input record's partition (the task).
func (c *Call) Partition() int32 { return c.in.Partition }

// Offset returns the input record's offset.
func (c *Call) Offset() int64 { return c.in.Offset }

// Timestamp returns the timestamp of the record being processed: the
// input's (as the source's timestamp extractor gives it), or the one its
// sender gave with SendRecord; in a punctuator, the time it fires for.
func (c *Call) Timestamp() time.Time { return c.ts }

// StreamTime returns the stream time of the record's sub-topology in its
// task: the largest input timestamp the sub-topology's sources have
// processed in the task, the current record's included (Subtopology: a
// repartition starts a new sub-topology, whose stream time only the
// re-keyed records move, as in Kafka Streams). In a punctuator, that of
// the sub-topology it follows (PunctuatorInfo.Subtopology). It survives
// restarts and rebalances where the runtime keeps it (the processor: in
// its changelogs' offset records, so a task with a store).
func (c *Call) StreamTime() time.Time { return c.stream }

// Node returns the name of the node being run.
func (c *Call) Node() string { return c.node.name }

// Count counts n occurrences of event at the current node (a late record
// dropped, a duplicate ignored): something the topology chose to do with
// a record that leaves no output. The runtime counts it if the record (or
// punctuation) succeeds and its transaction commits; a runtime that keeps
// no counts (not a Counter) ignores it.
func (c *Call) Count(event string, n int64) {
	if ct, ok := c.rt.(Counter); ok {
		ct.Count(c.node.name, event, n)
	}
}

func (c *Call) runtimeErr(err error) error {
	if err != nil && c.rtErr == nil {
		c.rtErr = err
	}
	return err
}

// misuse records a programming error; Dispatch reports the first one.
func (c *Call) misuse(e *UsageError) error {
	if c.useErr == nil {
		c.useErr = e
	}
	return e
}

func (c *Call) checkStore(name string) error {
	if !slices.Contains(c.node.stores, name) {
		return c.misuse(&UsageError{Node: c.node.name, Store: name})
	}
	return nil
}

// checkWrite is checkStore for a write: a global store is written only
// from its topic.
func (c *Call) checkWrite(store string) error {
	if err := c.checkStore(store); err != nil {
		return err
	}
	if c.t != nil && c.t.globals[store] {
		return c.misuse(&UsageError{Node: c.node.name, Store: store, ReadOnly: true})
	}
	return nil
}

func (c *Call) get(store string, key []byte) ([]byte, bool, error) {
	if err := c.checkStore(store); err != nil {
		return nil, false, err
	}
	v, ok, err := c.rt.Get(store, key)
	return v, ok, c.runtimeErr(err)
}

func (c *Call) rangeKeys(store string, lo, hi []byte, fn func(key, value []byte) bool) error {
	if err := c.checkStore(store); err != nil {
		return err
	}
	return c.runtimeErr(c.rt.Range(store, lo, hi, fn))
}

func (c *Call) put(store string, key, value []byte) error {
	if err := c.checkWrite(store); err != nil {
		return err
	}
	return c.runtimeErr(c.rt.Put(store, key, value))
}

func (c *Call) del(store string, key []byte) error {
	if err := c.checkWrite(store); err != nil {
		return err
	}
	return c.runtimeErr(c.rt.Delete(store, key))
}

func (c *Call) emit(topic string, key, value []byte, ts time.Time, hdrs []Header) error {
	return c.runtimeErr(c.rt.Emit(topic, key, value, ts, hdrs))
}

// send runs child (which must be a child of the current node) on a record.
func (c *Call) send(child string, key, value any, ts time.Time, hdrs []Header) error {
	var target *node
	for _, ch := range c.node.children {
		if ch.name == child {
			target = ch
			break
		}
	}
	if target == nil {
		return c.misuse(&UsageError{Node: c.node.name, Child: child})
	}
	return c.run(target, key, value, ts, hdrs)
}

// run executes n and restores the current node afterwards. Errors from a
// child are returned as they are (already naming the child).
func (c *Call) run(n *node, key, value any, ts time.Time, hdrs []Header) error {
	prev, prevTS := c.node, c.ts
	c.node, c.ts = n, ts
	defer func() { c.node, c.ts = prev, prevTS }()
	err := n.handle(c, key, value, ts, hdrs)
	if err == nil {
		return nil
	}
	if isNodeError(err) {
		return err // already names the innermost node
	}
	return &ProcessError{Node: n.name, Err: err}
}

func isNodeError(err error) bool {
	var pe *ProcessError
	var ue *UsageError
	return errors.As(err, &pe) || errors.As(err, &ue)
}
