package topology

import (
	"context"
	"fmt"
	"time"
)

// SourceOpt configures a source added with Source.
type SourceOpt[K, V any] interface{ applySource(*node) }

// TimestampExtractor returns the timestamp of a decoded record; recordTime
// is the Kafka record's timestamp.
type TimestampExtractor[K, V any] func(key K, value V, recordTime time.Time) time.Time

// WithTimestamp sets the source's timestamp extractor. A record's
// timestamp (Call.Timestamp, the timestamp of what it sends, stream time)
// is then what fn returns. The default is the Kafka record timestamp.
func WithTimestamp[K, V any](fn TimestampExtractor[K, V]) SourceOpt[K, V] {
	return sourceOptFor[K, V](func(n *node) {
		n.tsFn = func(key, value any, rt time.Time) time.Time {
			return fn(unbox[K](key), unbox[V](value), rt)
		}
	})
}

// sourceOptFor carries a typed option's function: the type parameters only
// make the compiler check the extractor against the source's types.
type sourceOptFor[K, V any] func(*node)

func (o sourceOptFor[K, V]) applySource(n *node) { o(n) }

// PunctuationType says which clock drives a punctuator.
type PunctuationType int

const (
	// StreamTime punctuators fire when their sub-topology's stream time in
	// a task (the largest record timestamp it has processed; see
	// PunctuatorInfo.Subtopology) crosses the next multiple of the
	// interval; they fire once per crossing, however many multiples a
	// record skips, as Kafka Streams' do.
	StreamTime PunctuationType = iota
	// WallClock punctuators fire every interval of wall-clock time, on
	// every task, whether or not its partition receives records.
	WallClock
)

func (p PunctuationType) String() string {
	switch p {
	case StreamTime:
		return "stream-time"
	case WallClock:
		return "wall-clock"
	}
	return fmt.Sprintf("PunctuationType(%d)", int(p))
}

// PunctuateFunc runs when a punctuator fires. at is the time it fires for:
// the interval boundary stream time crossed (StreamTime), or the wall-clock
// time (WallClock). A returned error aborts the transaction: it is not a
// bad record.
type PunctuateFunc func(ctx *Call, at time.Time) error

// PunctuatorRef is the handle of a punctuator. Its children list it by
// name with Parents; it sends to them with their refs' Send, like a node.
type PunctuatorRef struct{ name string }

// Name returns the punctuator's name.
func (p PunctuatorRef) Name() string { return p.name }

// Schedule adds a punctuator: fn runs per task (input partition) every
// interval of the given clock, inside the task's transaction, with the
// stores named by Stores. Its writes and sends commit with the transaction
// like a record's, and a transaction that aborts after it fired makes it
// fire again, against the state it saw.
func Schedule(b *Builder, name string, interval time.Duration, typ PunctuationType, fn PunctuateFunc, opts ...NodeOpt) PunctuatorRef {
	n := &node{name: name, kind: kindPunctuator, interval: interval, ptype: typ, punct: fn}
	for _, o := range opts {
		o.apply(n)
	}
	b.add(n)
	return PunctuatorRef{name}
}

// PunctuatorInfo describes a punctuator.
type PunctuatorInfo struct {
	Name     string
	Interval time.Duration
	Type     PunctuationType
	// Subtopology is the sub-topology whose stream time the punctuator
	// follows: that of the nodes it shares stores with or sends to; -1
	// when they read no source, and then it follows the task's stream
	// time (the largest of its sub-topologies').
	Subtopology int
}

// Punctuators returns the punctuators in declaration order.
func (t *Topology) Punctuators() []PunctuatorInfo {
	var out []PunctuatorInfo
	for _, n := range t.nodes {
		if n.kind == kindPunctuator {
			out = append(out, PunctuatorInfo{n.name, n.interval, n.ptype, t.punctSub(n)})
		}
	}
	return out
}

// Punctuate runs the punctuator name for the task of partition at time at,
// with the stream time of its sub-topology in the task. Store access and output go through rt, as
// in Dispatch. Every error aborts the transaction: a *ProcessError (the
// punctuator or a node it sent to failed), a *RuntimeError, a *UsageError,
// or one wrapping ErrNoPunctuator.
func (t *Topology) Punctuate(ctx context.Context, rt Runtime, name string, partition int32, at, streamTime time.Time) error {
	n := t.byName[name]
	if n == nil || n.kind != kindPunctuator {
		return fmt.Errorf("%w %q", ErrNoPunctuator, name)
	}
	in := &Input{Partition: partition, Offset: -1, Timestamp: at, StreamTime: streamTime}
	c := &Call{ctx: ctx, rt: rt, t: t, in: in, node: n, ts: at, stream: streamTime}
	err := n.punct(c, at)
	if c.rtErr != nil {
		return &RuntimeError{Err: c.rtErr}
	}
	if c.useErr != nil {
		return c.useErr
	}
	if err != nil && !isNodeError(err) {
		err = &ProcessError{Node: n.name, Err: err}
	}
	return err
}
