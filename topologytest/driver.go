// Package topologytest runs a topology without brokers, deterministically,
// for unit tests: the counterpart of Kafka Streams' TopologyTestDriver.
//
// Records piped into an input topic run through the same per-task code as
// the processor's (package internal/taskrun: a bad record's effects rolled
// back and the record dead-lettered with the same headers, stores scoped to
// the record's partition, stream time and punctuators), each in its own
// transaction over an in-memory Pebble state. Records sent to a repartition
// topic are read back, like the processor does once the transaction
// commits, before Pipe returns. Wall-clock time is the driver's: it moves
// only with AdvanceWallClock, which fires the wall-clock punctuators of
// every partition, whether records came to it or not.
//
// A record piped into the topic of a global store (topology.GlobalStore)
// is written into the store directly, as the processor's global-store
// reader does, outside any task's transaction: its key put, or deleted
// when the value is nil (a Kafka null). It produces no output and no
// changelog; nodes of every task read it from then on.
package topologytest

import (
	"context"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/taskrun"
	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// TB is the part of testing.TB the driver uses; *testing.T and *testing.B
// satisfy it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Options configures a Driver. The zero value is valid.
type Options struct {
	// Application is the application ID (the processor's group): it names
	// repartition topics and the dead-letter topic.
	//
	// The default value is "test".
	Application string

	// Partitions is the partition count of every input and internal
	// topic: the number of tasks.
	//
	// The default value is 1.
	Partitions int32

	// Start is the wall-clock time the driver starts at.
	//
	// The default value is 2024-01-01T00:00:00Z.
	Start time.Time

	// DeadLetterTopic is where bad records go.
	//
	// The default value is <Application>-dlq, as in the processor.
	DeadLetterTopic string
}

func (o *Options) ensureDefaults() {
	if o.Application == "" {
		o.Application = "test"
	}
	if o.Partitions <= 0 {
		o.Partitions = 1
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.DeadLetterTopic == "" {
		o.DeadLetterTopic = o.Application + "-dlq"
	}
}

// Record is a record as the driver keeps it: an input piped in or an
// output produced.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   []topology.Header
}

// Driver runs a topology on piped records. It is not safe for concurrent
// use.
type Driver struct {
	t      TB
	opts   Options
	topo   *topology.Topology
	db     *state.DB
	now    time.Time
	tasks  []*taskrun.Task // committed clocks, per partition
	next   map[string][]int64
	topics map[string][]Record // produced records, per topic, in order
	read   map[string]int      // records read by output readers, per topic
	queue  []Record            // repartition records to feed back
	counts map[[2]string]int64 // topology events of committed transactions: node, event
	global map[string][]string // global stores, per topic they replicate
}

// New returns a driver for topo. Every failure of the driver (a runtime
// error, a punctuator's error, a usage error) fails t. The driver closes
// at t's cleanup.
func New(t TB, topo *topology.Topology, opts Options) *Driver {
	t.Helper()
	opts.ensureDefaults()
	topo, err := topo.ForApplication(opts.Application)
	if err != nil {
		t.Fatalf("topologytest: %v", err)
	}
	db, err := state.Open("/state", state.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatalf("topologytest: opening in-memory state: %v", err)
	}
	d := &Driver{
		t: t, opts: opts, topo: topo, db: db, now: opts.Start,
		next: make(map[string][]int64), topics: make(map[string][]Record), read: make(map[string]int),
		counts: make(map[[2]string]int64), global: make(map[string][]string),
	}
	for store, topic := range topo.GlobalStores() {
		d.global[topic] = append(d.global[topic], store)
	}
	for _, stores := range d.global {
		slices.Sort(stores)
	}
	for p := range opts.Partitions {
		d.tasks = append(d.tasks, &taskrun.Task{Topo: topo, Part: p, Clock: taskrun.NewClock(topo, nil, d.now)})
	}
	t.Cleanup(func() { _ = db.Close() })
	return d
}

// Topology returns the topology as the driver runs it: repartition topics
// named for the application.
func (d *Driver) Topology() *topology.Topology { return d.topo }

// WallClock returns the driver's wall-clock time.
func (d *Driver) WallClock() time.Time { return d.now }

// StreamTime returns the stream time of partition's task (zero before its
// first record).
func (d *Driver) StreamTime(partition int32) time.Time { return d.tasks[partition].Clock.Stream() }

// PipeRaw runs one raw record into topic, in partition r.Partition (r's
// topic and offset are set by the driver), in a transaction of its own,
// then feeds back whatever it sent to repartition topics.
//
// A record of a global store's topic is written into the store instead
// (see the package documentation); its partition does not matter.
func (d *Driver) PipeRaw(topic string, r Record) {
	d.t.Helper()
	if r.Partition < 0 || r.Partition >= d.opts.Partitions {
		d.t.Fatalf("topologytest: partition %d of %s: the driver has %d partitions", r.Partition, topic, d.opts.Partitions)
	}
	r.Topic = topic
	if stores, ok := d.global[topic]; ok {
		d.applyGlobal(stores, r)
		return
	}
	d.process(r)
	for len(d.queue) > 0 {
		next := d.queue[0]
		d.queue = d.queue[1:]
		d.process(next)
	}
}

// AdvanceWallClock moves wall-clock time by by, then runs, on every
// partition, the wall-clock punctuators due, each partition in a
// transaction of its own (records they send to repartition topics are fed
// back).
func (d *Driver) AdvanceWallClock(by time.Duration) {
	d.t.Helper()
	d.now = d.now.Add(by)
	for _, tk := range d.tasks {
		d.transact(tk, func(txn *memTxn, task *taskrun.Task) error {
			_, err := task.PunctuateWall(context.Background(), txn, d.now)
			return err
		})
	}
	for len(d.queue) > 0 {
		next := d.queue[0]
		d.queue = d.queue[1:]
		d.process(next)
	}
}

// applyGlobal writes a record of a global store's topic into each store
// replicating it, in state partition taskrun.GlobalPartition (where the
// tasks' reads of a global store go), as the processor's global-store
// reader does: a put, or a delete for a nil value. No task, transaction,
// output or changelog is involved.
func (d *Driver) applyGlobal(stores []string, r Record) {
	d.t.Helper()
	staged := d.db.NewStaged()
	for _, store := range stores {
		var err error
		if r.Value == nil {
			err = staged.Delete(store, taskrun.GlobalPartition, r.Key)
		} else {
			err = staged.Put(store, taskrun.GlobalPartition, r.Key, r.Value)
		}
		if err != nil {
			staged.Discard()
			d.fatalf("writing global store %s: %v", store, err)
			return
		}
	}
	if err := staged.Apply(); err != nil {
		d.fatalf("applying global store write: %v", err)
	}
}

// process runs one input record in a transaction.
func (d *Driver) process(r Record) {
	d.t.Helper()
	offs := d.next[r.Topic]
	if offs == nil {
		offs = make([]int64, d.opts.Partitions)
		d.next[r.Topic] = offs
	}
	r.Offset = offs[r.Partition]
	offs[r.Partition]++
	d.transact(d.tasks[r.Partition], func(txn *memTxn, task *taskrun.Task) error {
		in := topology.Input{
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers,
		}
		res, err := task.Process(context.Background(), txn, &in)
		if err == nil && res.Bad != nil {
			out := taskrun.DeadLetter(d.opts.DeadLetterTopic, &in, res.Bad)
			txn.Emit(&out, nil)
		}
		return err
	})
}

// transact runs fn on a copy of tk's clock in a transaction: committed
// (state applied, outputs appended, clock kept) when fn succeeds, failing
// the test otherwise.
func (d *Driver) transact(tk *taskrun.Task, fn func(*memTxn, *taskrun.Task) error) {
	d.t.Helper()
	txn := &memTxn{d: d, staged: d.db.NewStaged()}
	work := &taskrun.Task{Topo: tk.Topo, Part: tk.Part, Clock: tk.Clock.Clone()}
	if err := fn(txn, work); err != nil {
		txn.staged.Discard()
		d.t.Fatalf("topologytest: transaction of partition %d aborted: %v", tk.Part, err)
		return
	}
	if err := txn.staged.Apply(); err != nil {
		d.t.Fatalf("topologytest: applying state: %v", err)
		return
	}
	tk.Clock = work.Clock
	for k, n := range txn.counts {
		d.counts[k] += n
	}
	for _, r := range txn.out {
		d.topics[r.Topic] = append(d.topics[r.Topic], r)
		if d.topo.IsRepartition(r.Topic) {
			d.queue = append(d.queue, r)
		}
	}
}

// memTxn is the driver's transaction: state staged over the in-memory
// Pebble, outputs held until commit.
type memTxn struct {
	d      *Driver
	staged *state.Staged
	out    []Record
	counts map[[2]string]int64
}

func (m *memTxn) Get(store string, part int32, key []byte) ([]byte, bool, error) {
	return m.staged.Get(store, part, key)
}

func (m *memTxn) Range(store string, part int32, lo, hi []byte, fn func(key, value []byte) bool) error {
	return m.staged.Range(store, part, lo, hi, fn)
}

func (m *memTxn) Put(store string, part int32, key, value []byte) error {
	return m.staged.Put(store, part, key, value)
}

func (m *memTxn) Delete(store string, part int32, key []byte) error {
	return m.staged.Delete(store, part, key)
}

// Count counts a topology event (topology.Call.Count); the driver keeps
// the counts of committed transactions (Driver.Count).
func (m *memTxn) Count(node, event string, n int64) {
	if m.counts == nil {
		m.counts = make(map[[2]string]int64)
	}
	m.counts[[2]string{node, event}] += n
}

// Emit partitions an output by key as the processor's producer does
// (murmur2, Kafka's default); a record without a key goes to partition 0.
func (m *memTxn) Emit(o *taskrun.Output, _ *topology.Input) {
	part := int32(0)
	if o.Key != nil {
		part = int32(keyPartitioner.ForTopic(o.Topic).Partition(&kgo.Record{Key: o.Key}, int(m.d.opts.Partitions)))
	}
	m.out = append(m.out, Record{
		Topic: o.Topic, Partition: part, Key: slices.Clone(o.Key), Value: slices.Clone(o.Value),
		Timestamp: o.Timestamp, Headers: slices.Clone(o.Headers),
	})
}

var keyPartitioner = kgo.StickyKeyPartitioner(nil)

// Count returns how many times node counted event (topology.Call.Count)
// in committed transactions.
func (d *Driver) Count(node, event string) int64 { return d.counts[[2]string{node, event}] }

// Produced returns every record produced to topic, in order (outputs,
// repartition records, dead letters), whether or not read.
func (d *Driver) Produced(topic string) []Record { return slices.Clone(d.topics[topic]) }

// DeadLetters returns every dead-lettered record, in order.
func (d *Driver) DeadLetters() []Record { return d.Produced(d.opts.DeadLetterTopic) }

// Partition returns the partition the processor's producer would write
// key to (as the driver's inputs and outputs are partitioned).
func (d *Driver) Partition(key []byte) int32 {
	if key == nil {
		return 0
	}
	return int32(keyPartitioner.ForTopic("").Partition(&kgo.Record{Key: key}, int(d.opts.Partitions)))
}

func (d *Driver) fatalf(format string, args ...any) {
	d.t.Helper()
	d.t.Fatalf("topologytest: "+format, args...)
}
