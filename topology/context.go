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
// record: Process reports it as a *RuntimeError even if a processor swallowed
// it. The key, value and header slices passed to Put, Delete and Emit belong
// to the Runtime from then on (it holds them until the record is produced):
// callers pass slices nothing else changes, as Serde.Encode returns them.
type Runtime interface {
	Get(store string, key []byte) (value []byte, ok bool, err error)
	Put(store string, key, value []byte) error
	Delete(store string, key []byte) error
	Emit(topic string, key, value []byte, ts time.Time, headers []Header) error
}

// Input is one raw input record handed to Process.
type Input struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   []Header
}

// Context is passed to processors. It carries the input record's
// coordinates and routes store access and sends through the Runtime. A
// Context is valid only during the call it was passed to.
type Context struct {
	ctx    context.Context
	rt     Runtime
	t      *Topology
	in     *Input
	node   *node
	ts     time.Time
	rtErr  error       // first Runtime failure; it wins over whatever the processor returned
	useErr *UsageError // first undeclared access; it wins over all but rtErr
}

// Context returns the context of the Process call.
func (c *Context) Context() context.Context { return c.ctx }

// Topic returns the input record's topic.
func (c *Context) Topic() string { return c.in.Topic }

// Partition returns the input record's partition (the task).
func (c *Context) Partition() int32 { return c.in.Partition }

// Offset returns the input record's offset.
func (c *Context) Offset() int64 { return c.in.Offset }

// Node returns the name of the node being run.
func (c *Context) Node() string { return c.node.name }

func (c *Context) runtimeErr(err error) error {
	if err != nil && c.rtErr == nil {
		c.rtErr = err
	}
	return err
}

// misuse records a programming error; Process reports the first one.
func (c *Context) misuse(e *UsageError) error {
	if c.useErr == nil {
		c.useErr = e
	}
	return e
}

func (c *Context) checkStore(name string) error {
	if !slices.Contains(c.node.stores, name) {
		return c.misuse(&UsageError{Node: c.node.name, Store: name})
	}
	return nil
}

func (c *Context) get(store string, key []byte) ([]byte, bool, error) {
	if err := c.checkStore(store); err != nil {
		return nil, false, err
	}
	v, ok, err := c.rt.Get(store, key)
	return v, ok, c.runtimeErr(err)
}

func (c *Context) put(store string, key, value []byte) error {
	if err := c.checkStore(store); err != nil {
		return err
	}
	return c.runtimeErr(c.rt.Put(store, key, value))
}

func (c *Context) del(store string, key []byte) error {
	if err := c.checkStore(store); err != nil {
		return err
	}
	return c.runtimeErr(c.rt.Delete(store, key))
}

func (c *Context) emit(topic string, key, value []byte, ts time.Time, hdrs []Header) error {
	return c.runtimeErr(c.rt.Emit(topic, key, value, ts, hdrs))
}

// send runs child (which must be a child of the current node) on a record.
func (c *Context) send(child string, key, value any, ts time.Time, hdrs []Header) error {
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
func (c *Context) run(n *node, key, value any, ts time.Time, hdrs []Header) error {
	prev, prevTS := c.node, c.ts
	c.node, c.ts = n, ts
	defer func() { c.node, c.ts = prev, prevTS }()
	err := n.handle(c, key, value, ts, hdrs)
	if err == nil {
		return nil
	}
	var pe *ProcessError
	var ue *UsageError
	if errors.As(err, &pe) || errors.As(err, &ue) {
		return err // already names the innermost node
	}
	return &ProcessError{Node: n.name, Err: err}
}
