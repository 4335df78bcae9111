package processor

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/taskrun"
	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// Dead-letter headers: where the bad record came from and why it failed.
const (
	HeaderError     = taskrun.HeaderError
	HeaderTopic     = taskrun.HeaderTopic
	HeaderPartition = taskrun.HeaderPartition
	HeaderOffset    = taskrun.HeaderOffset
)

type topicPart struct {
	topic string
	part  int32
}

type storePart struct {
	store string
	part  int32
}

// txn is the work of one open transaction: its staged state, what it
// consumed, and the last changelog record per store partition (whose
// offset becomes the local checkpoint once the transaction commits).
type txn struct {
	p        *Processor
	ctx      context.Context
	produce  func(context.Context, *kgo.Record, func(*kgo.Record, error))
	staged   *state.Staged
	errs     firstErr
	consumed map[topicPart]int64
	lastCL   map[storePart]*kgo.Record
	records  int
	dlq      int
	skipped  int
	outputs  int
	events   map[Event]int64 // topology event counts, added to Stats on commit
	doomed   bool            // a record of a partition no longer ours was polled: abort
	revokes  int64           // tasks.revokes at Begin: a change means a rebalance aborted us
	start    time.Time
	endDur   time.Duration // from the start of end (flush, offset commit, EndTxn) until End reported the commit
	// tasks holds the tasks this transaction touched, each with its own
	// copy of the task's clock: kept if the transaction commits.
	tasks map[int32]*taskrun.Task
	// order holds the records of joined inputs not yet processed, when
	// the topology joins inputs (order.go).
	order *order
}

func (p *Processor) newTxn(ctx context.Context, produce func(context.Context, *kgo.Record, func(*kgo.Record, error))) *txn {
	t := &txn{
		p:        p,
		ctx:      ctx,
		produce:  produce,
		staged:   p.db.Load().NewStaged(),
		consumed: make(map[topicPart]int64),
		lastCL:   make(map[storePart]*kgo.Record),
		start:    time.Now(),
		tasks:    make(map[int32]*taskrun.Task),
	}
	return t
}

// task returns the task of partition part for this transaction.
func (t *txn) task(part int32) *taskrun.Task {
	tk := t.tasks[part]
	if tk == nil {
		tk = &taskrun.Task{Topo: t.p.topo, Part: part, Clock: t.p.clockOf(part).Clone()}
		t.tasks[part] = tk
	}
	return tk
}

// process runs one input record. A bad record is dead-lettered; a runtime
// failure is returned and must abort the transaction.
func (t *txn) process(r *kgo.Record) error {
	t.records++
	t.consumed[topicPart{r.Topic, r.Partition}] = r.Offset
	in := topology.Input{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
		Headers: fromKgoHeaders(r.Headers),
	}
	if cause, ok := t.p.refused.take(inputRef{r.Topic, r.Partition, r.Offset}); ok {
		return t.badRecord(&in, cause)
	}
	res, err := t.task(r.Partition).Process(t.ctx, t, &in)
	t.outputs += res.Outputs
	switch {
	case err != nil:
		return err
	case res.Bad != nil:
		return t.badRecord(&in, res.Bad)
	}
	return nil
}

// badRecord applies the source's error policy to a bad record.
func (t *txn) badRecord(in *topology.Input, cause error) error {
	switch t.p.cfg.policyOf(in.Topic) {
	case Fail:
		return &BadRecordError{Topic: in.Topic, Partition: in.Partition, Offset: in.Offset, Err: cause}
	case Skip:
		t.skipped++
		t.p.cfg.logger.Warn("skipping bad record (error policy skip)", "topic", in.Topic, "partition", in.Partition, "offset", in.Offset, "err", cause)
	default:
		t.deadLetter(in, cause)
	}
	return nil
}

func (t *txn) deadLetter(in *topology.Input, cause error) {
	t.dlq++
	t.p.cfg.logger.Debug("dead-lettering record", "topic", in.Topic, "partition", in.Partition, "offset", in.Offset, "err", cause)
	out := taskrun.DeadLetter(t.p.cfg.dlqTopic, in, cause)
	t.produce(t.ctx, toKgoRecord(&out), t.errs.promise())
}

// punctuateWall runs the due wall-clock punctuators of the ready tasks
// parts.
func (t *txn) punctuateWall(parts []int32, now time.Time) error {
	for _, part := range parts {
		n, err := t.task(part).PunctuateWall(t.ctx, t, now)
		t.outputs += n
		if err != nil {
			return fmt.Errorf("punctuating partition %d: %w", part, err)
		}
	}
	return nil
}

// Get, Put, Delete and Emit implement taskrun.Txn: a record's or a
// punctuation's effects, once it succeeded, go into the staged batch, the
// changelog and the producer.
func (t *txn) Get(store string, part int32, key []byte) ([]byte, bool, error) {
	return t.staged.Get(store, part, key)
}

func (t *txn) Range(store string, part int32, lo, hi []byte, fn func(key, value []byte) bool) error {
	return t.staged.Range(store, part, lo, hi, fn)
}

func (t *txn) Put(store string, part int32, key, value []byte) error {
	if err := t.staged.Put(store, part, key, value); err != nil {
		return err
	}
	t.produceChangelog(store, part, &kgo.Record{Key: key, Value: value})
	return nil
}

func (t *txn) Delete(store string, part int32, key []byte) error {
	if err := t.staged.Delete(store, part, key); err != nil {
		return err
	}
	t.produceChangelog(store, part, &kgo.Record{Key: key})
	return nil
}

// Count counts a topology event (topology.Call.Count) of this transaction.
func (t *txn) Count(node, event string, n int64) {
	if t.events == nil {
		t.events = make(map[Event]int64)
	}
	t.events[Event{node, event}] += n
}

func (t *txn) Emit(out *taskrun.Output, from *topology.Input) {
	if from == nil {
		t.produce(t.ctx, toKgoRecord(out), t.errs.promise())
		return
	}
	t.produce(t.ctx, toKgoRecord(out), t.outputPromise(inputRef{from.Topic, from.Partition, from.Offset}))
}

func toKgoRecord(out *taskrun.Output) *kgo.Record {
	return &kgo.Record{Topic: out.Topic, Key: out.Key, Value: out.Value, Timestamp: out.Timestamp, Headers: toKgoHeaders(out.Headers)}
}

// produceChangelog produces one changelog record into the transaction.
func (t *txn) produceChangelog(store string, part int32, rec *kgo.Record) {
	rec.Topic = t.p.changelogs[store]
	rec.Partition = part
	t.lastCL[storePart{store, part}] = rec
	t.produce(t.ctx, rec, t.errs.promise())
}

// finish writes, for every input partition consumed, its offset record into
// the changelog of every store fed by that input, and stages the matching
// input checkpoints. It is the last thing produced to those changelog
// partitions in the transaction, so a restore that reads it has read all of
// the transaction's state writes before it.
func (t *txn) finish() error {
	for part, tk := range t.tasks {
		if err := t.finishStreamTime(part, tk.Clock); err != nil {
			return err
		}
	}
	for tp, off := range t.consumed {
		for _, store := range t.p.storesOf[tp.topic] {
			t.produceChangelog(store, tp.part, offsetRecord(tp.topic, off))
			if err := t.staged.SetInputCheckpoint(inputCheckpointName(store, tp.topic), tp.part, off); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply stages the changelog checkpoints (now that the committed records
// have offsets) and applies the staged batch to the local store.
func (t *txn) apply() error {
	for sp, rec := range t.lastCL {
		if err := t.staged.SetCheckpoint(sp.store, sp.part, rec.Offset); err != nil {
			return err
		}
	}
	return t.staged.Apply()
}

// finishStreamTime writes a task's stream time, per sub-topology that this
// transaction moved it in, into the changelog partition of the task of
// every store of the sub-topology, as an offset record of the pseudo-topic
// streamTimeTopic, and stages it as that input checkpoint: a restore
// restores it like any offset record.
func (t *txn) finishStreamTime(part int32, c *taskrun.Clock) error {
	committed := t.p.clockOf(part)
	for _, store := range t.p.topo.StoreNames() {
		sub := t.p.topo.StoreSubtopology(store)
		stream := c.StreamOf(sub)
		if sub < 0 || stream.IsZero() || stream.UnixNano() < 0 || stream.Equal(committed.StreamOf(sub)) {
			continue
		}
		t.produceChangelog(store, part, offsetRecord(streamTimeTopic, stream.UnixNano()))
		if err := t.staged.SetInputCheckpoint(inputCheckpointName(store, streamTimeTopic), part, stream.UnixNano()); err != nil {
			return err
		}
	}
	return nil
}

func fromKgoHeaders(hs []kgo.RecordHeader) []topology.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]topology.Header, len(hs))
	for i, h := range hs {
		out[i] = topology.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

func toKgoHeaders(hs []topology.Header) []kgo.RecordHeader {
	if len(hs) == 0 {
		return nil
	}
	out := make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	return out
}
