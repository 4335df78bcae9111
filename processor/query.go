package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/taskrun"
	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// ErrNotOwner is wrapped by Query when another instance owns the key's
// partition; the *NotOwnerError says which.
var ErrNotOwner = errors.New("processor: partition not owned here")

// NotOwnerError names the partition of a queried key and, when the group
// says, the member that owns it (its client ID: the owner's transactional
// ID, <group>-<instance id>).
type NotOwnerError struct {
	Partition int32
	Owner     string
}

func (e *NotOwnerError) Error() string {
	owner := e.Owner
	if owner == "" {
		owner = "no member (rebalancing?)"
	}
	return fmt.Sprintf("partition %d is owned by %s", e.Partition, owner)
}

func (e *NotOwnerError) Unwrap() error { return ErrNotOwner }

// QueryResult is the committed state of one key.
type QueryResult struct {
	Partition int32  // the task (input partition) the key belongs to
	Value     []byte // nil when not Found
	Found     bool
	// Offset is the last input offset of the partition that the state
	// reflects (-1 before any): a caller that produced a record at offset
	// o reads its own write once Offset >= o.
	Offset int64
}

// ErrUnknownStore is returned by Query for a store the topology does not
// have.
var ErrUnknownStore = errors.New("processor: unknown store")

// ErrNotStarted is returned by Query before the processor knows its input
// (Run has not yet checked the topics), and for a global store before it
// is bootstrapped.
var ErrNotStarted = errors.New("processor: not started")

// QueryOpt configures one Query.
type QueryOpt interface{ applyQuery(*queryCfg) }

type queryCfg struct{ route []byte }

type queryOpt func(*queryCfg)

func (o queryOpt) applyQuery(c *queryCfg) { o(c) }

// RoutingKey routes the query by route instead of the store key: route is
// the input record key whose partition holds the store key. A store
// written under other keys than its input's (an index keyed by order id,
// written from orders keyed by customer) must be queried with the input
// key that wrote it; otherwise the store key is hashed like an input key
// and the answer comes from the wrong partition.
func RoutingKey(route []byte) QueryOpt {
	return queryOpt(func(c *queryCfg) { c.route = route })
}

// Query reads key's committed state in store, from this instance if it
// owns the key's partition (restored and processing), else it fails with a
// *NotOwnerError naming the owner. A global store is on every instance:
// each answers from its replica once bootstrapped (Partition 0, Offset
// -1), as up to date as its reading of the store's topic. The partition is the one the store key
// would go to as an input record key (the Java client's default
// partitioner, murmur2, as the input is expected to be partitioned), or
// RoutingKey's: a store keyed differently from its input needs it. Get is
// the typed form.
func (p *Processor) Query(ctx context.Context, store string, key []byte, opts ...QueryOpt) (QueryResult, error) {
	if len(p.loops) > 0 {
		_, global := p.globals[store]
		return loopsQuery(p, global, func(l *Processor) (QueryResult, error) { return l.Query(ctx, store, key, opts...) })
	}
	if p.topo.IsWindowStore(store) {
		return QueryResult{Offset: -1}, fmt.Errorf("querying store %q: %w", store, ErrWindowStore)
	}
	db, l, err := p.locate(ctx, store, key, opts)
	if err != nil {
		return l, err
	}
	l.Value, l.Found, err = db.Get(store, l.Partition, key)
	return l, err
}

// ErrWindowStore is returned by Query for a window store: its keys are
// windows of a key, read with QueryWindows.
var ErrWindowStore = errors.New("processor: a window store is read with QueryWindows")

// WindowValue is one window of a key in a window store, with its value.
type WindowValue struct {
	Window topology.Window
	Value  []byte
}

// QueryWindows reads the committed windows of key in window store that
// start in [from, to], in start order, from this instance if it owns the
// key's partition (else a *NotOwnerError), routed as Query routes. The
// QueryResult says where the answer came from; its Value is unset, and
// Found says whether any window was. FetchWindows is the typed form.
func (p *Processor) QueryWindows(ctx context.Context, store string, key []byte, from, to time.Time, opts ...QueryOpt) ([]WindowValue, QueryResult, error) {
	if len(p.loops) > 0 {
		return p.loopsQueryWindows(ctx, store, key, from, to, opts)
	}
	if len(p.topo.StoreSources(store)) > 0 && !p.topo.IsWindowStore(store) {
		return nil, QueryResult{Offset: -1}, fmt.Errorf("querying windows of store %q: it is not a window store (use Query)", store)
	}
	db, l, err := p.locate(ctx, store, key, opts)
	if err != nil {
		return nil, l, err
	}
	var out []WindowValue
	lo, hi := topology.WindowKeyRange(key, from, to)
	err = db.Range(store, l.Partition, lo, hi, func(k, v []byte) bool {
		if _, w, ok := topology.ParseWindowEntry(k); ok {
			out = append(out, WindowValue{Window: w, Value: bytes.Clone(v)})
		}
		return true
	})
	l.Found = len(out) > 0
	return out, l, err
}

// locate finds the partition of key (or its routing key) in store and
// checks this instance serves it: ready, with its state open. It returns
// the state and the result with the partition and the input offset the
// state reflects.
func (p *Processor) locate(ctx context.Context, store string, key []byte, opts []QueryOpt) (*state.DB, QueryResult, error) {
	var qc queryCfg
	for _, o := range opts {
		o.applyQuery(&qc)
	}
	route := key
	if qc.route != nil {
		route = qc.route
	}
	if p.topo.IsGlobalStore(store) {
		// Replicated whole on every instance: this one answers, once its
		// global stores are bootstrapped. The input offset is not one
		// offset (each partition of the store's topic has its own).
		l := QueryResult{Partition: taskrun.GlobalPartition, Offset: -1}
		db := p.db.Load()
		if !p.globalsReady.Load() || db == nil {
			return nil, l, fmt.Errorf("querying global store %q: %w", store, ErrNotStarted)
		}
		return db, l, nil
	}
	srcs := p.topo.StoreSources(store)
	if len(srcs) == 0 {
		return nil, QueryResult{Offset: -1}, fmt.Errorf("querying store %q: %w", store, ErrUnknownStore)
	}
	n := p.parts.Load()
	if n <= 0 {
		return nil, QueryResult{Offset: -1}, fmt.Errorf("querying store %q: %w", store, ErrNotStarted)
	}
	part := int32(kgo.StickyKeyPartitioner(nil).ForTopic(srcs[0]).Partition(&kgo.Record{Key: route}, int(n)))
	db := p.db.Load()
	if !p.tasks.readyNow(part) || db == nil {
		return nil, QueryResult{Partition: part, Offset: -1}, &NotOwnerError{Partition: part, Owner: p.owner(ctx, srcs[0], part)}
	}
	l := QueryResult{Partition: part, Offset: -1}
	// The offset first, then the value: the value is then at least as new
	// as the offset reported.
	off, ok, err := db.InputCheckpoint(inputCheckpointName(store, srcs[0]), part)
	if err != nil {
		return nil, l, err
	}
	if ok {
		l.Offset = off
	}
	return db, l, nil
}

// WindowOf is a window with its decoded value.
type WindowOf[V any] struct {
	Window topology.Window
	Value  V
}

// FetchWindows is the typed QueryWindows: it encodes key with the store's
// key serde and decodes each window's value with its value serde.
func FetchWindows[K, V any](ctx context.Context, p *Processor, store topology.WindowStoreRef[K, V], key K, from, to time.Time, opts ...QueryOpt) ([]WindowOf[V], QueryResult, error) {
	ks, vs := store.Serdes()
	k, err := ks.Encode(key)
	if err != nil {
		return nil, QueryResult{Offset: -1}, fmt.Errorf("encoding key for store %q: %w", store.Name(), err)
	}
	raw, res, err := p.QueryWindows(ctx, store.Name(), k, from, to, opts...)
	if err != nil {
		return nil, res, err
	}
	out := make([]WindowOf[V], len(raw))
	for i, r := range raw {
		v, err := vs.Decode(r.Value)
		if err != nil {
			return nil, res, fmt.Errorf("decoding value from store %q: %w", store.Name(), err)
		}
		out[i] = WindowOf[V]{Window: r.Window, Value: v}
	}
	return out, res, nil
}

// Get is the typed Query: it encodes key with the store's key serde and
// decodes the committed value with its value serde. The QueryResult says
// where the answer came from (its Value holds the raw bytes); the V is
// the zero value when the key is not Found.
func Get[K, V any](ctx context.Context, p *Processor, store topology.StoreRef[K, V], key K, opts ...QueryOpt) (V, QueryResult, error) {
	var zero V
	ks, vs := store.Serdes()
	k, err := ks.Encode(key)
	if err != nil {
		return zero, QueryResult{Offset: -1}, fmt.Errorf("encoding key for store %q: %w", store.Name(), err)
	}
	res, err := p.Query(ctx, store.Name(), k, opts...)
	if err != nil || !res.Found {
		return zero, res, err
	}
	v, err := vs.Decode(res.Value)
	if err != nil {
		return zero, res, fmt.Errorf("decoding value from store %q: %w", store.Name(), err)
	}
	return v, res, nil
}

// owner asks the group which member owns topic partition part.
func (p *Processor) owner(ctx context.Context, topic string, part int32) string {
	groups, err := p.admin.DescribeGroups(ctx, p.cfg.group)
	if err != nil {
		return ""
	}
	var owner string
	for _, g := range groups {
		for _, m := range g.Members {
			if a, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range a.Topics {
					if t.Topic == topic && slices.Contains(t.Partitions, part) {
						owner = m.ClientID
					}
				}
			}
		}
	}
	return owner
}

// Ready reports whether the instance is in its group and every partition
// assigned to it is restored and processing.
func (p *Processor) Ready() bool {
	if len(p.loops) > 0 {
		return p.loopsReady()
	}
	return p.tasks.allReady()
}

// Task is the unit of ownership: what the group assigns to one instance,
// which restores its state before processing its records, and what a key
// belongs to. Today a task is one input partition (with the same partition
// of every store it uses); a later version adds a sub-topology ID.
type Task struct {
	Partition int32
}

// Tasks is a list of tasks.
type Tasks []Task

// Partitions returns the tasks' partitions, in order.
func (ts Tasks) Partitions() []int32 {
	out := make([]int32, len(ts))
	for i, t := range ts {
		out[i] = t.Partition
	}
	return out
}

// Assigned returns the tasks assigned to this instance, sorted by
// partition.
func (p *Processor) Assigned() Tasks {
	if len(p.loops) > 0 {
		return p.loopsAssigned()
	}
	parts := p.tasks.assignedParts()
	out := make(Tasks, len(parts))
	for i, part := range parts {
		out[i] = Task{Partition: part}
	}
	return out
}

// Lag returns, per assigned input partition, how many offsets the last
// committed transaction is behind the last stable offset the consumer saw.
// A caught-up transactional input may show 1: commit markers take offsets.
func (p *Processor) Lag() map[int32]int64 {
	if len(p.loops) > 0 {
		return p.loopsLag()
	}
	return p.tasks.lag()
}

// StateMetrics returns the local Pebble store's metrics, or nil when it is
// not open.
func (p *Processor) StateMetrics() *pebble.Metrics {
	db := p.db.Load()
	if db == nil {
		return nil
	}
	return db.Metrics()
}
