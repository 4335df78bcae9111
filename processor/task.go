package processor

import (
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// Dead-letter headers: where the bad record came from and why it failed.
const (
	HeaderError     = "exactly.error"
	HeaderTopic     = "exactly.source.topic"
	HeaderPartition = "exactly.source.partition"
	HeaderOffset    = "exactly.source.offset"
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
	errs     kgo.FirstErrPromise
	consumed map[topicPart]int64
	lastCL   map[storePart]*kgo.Record
	records  int
	dlq      int
	skipped  int
	outputs  int
	doomed   bool  // a record of a partition no longer ours was polled: abort
	revokes  int64 // tasks.revokes at Begin: a change means a rebalance aborted us
	start    time.Time
	rt       recordRuntime
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
	}
	t.rt.txn = t
	return t
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
	ref := inputRef{r.Topic, r.Partition, r.Offset}
	if cause, ok := t.p.refused.take(ref); ok {
		return t.badRecord(r, cause)
	}
	t.rt.reset(ref)
	err := t.p.topo.Dispatch(t.ctx, &t.rt, &in)
	switch {
	case err == nil:
		return t.rt.flush()
	case topology.IsBadRecord(err):
		t.rt.reset(ref)
		return t.badRecord(r, err)
	default:
		return err
	}
}

// badRecord applies the source's error policy to a bad record.
func (t *txn) badRecord(r *kgo.Record, cause error) error {
	switch t.p.cfg.policyOf(r.Topic) {
	case Fail:
		return &BadRecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: cause}
	case Skip:
		t.skipped++
		t.p.cfg.logger.Warn("skipping bad record (error policy skip)", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", cause)
	default:
		t.deadLetter(r, cause)
	}
	return nil
}

func (t *txn) deadLetter(r *kgo.Record, cause error) {
	t.dlq++
	hdrs := append(append([]kgo.RecordHeader(nil), r.Headers...),
		kgo.RecordHeader{Key: HeaderError, Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		kgo.RecordHeader{Key: HeaderOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
	)
	t.p.cfg.logger.Debug("dead-lettering record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", cause)
	t.produce(t.ctx, &kgo.Record{
		Topic: t.p.cfg.dlqTopic, Key: r.Key, Value: r.Value,
		Headers: hdrs, Timestamp: r.Timestamp,
	}, t.errs.Promise())
}

// produceChangelog produces one changelog record into the transaction.
func (t *txn) produceChangelog(store string, part int32, rec *kgo.Record) {
	rec.Topic = t.p.changelogs[store]
	rec.Partition = part
	t.lastCL[storePart{store, part}] = rec
	t.produce(t.ctx, rec, t.errs.Promise())
}

// finish writes, for every input partition consumed, its offset record into
// the changelog of every store fed by that input, and stages the matching
// input checkpoints. It is the last thing produced to those changelog
// partitions in the transaction, so a restore that reads it has read all of
// the transaction's state writes before it.
func (t *txn) finish() error {
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

// recordRuntime implements topology.Runtime for one input record. Its
// writes and emits are held back until the record succeeds, so a record
// that fails leaves no trace in the transaction but its dead-letter record.
type recordRuntime struct {
	txn   *txn
	in    inputRef
	part  int32
	ops   []stateOp
	emits []*kgo.Record
}

type stateOp struct {
	store string
	key   []byte
	value []byte
	del   bool
}

func (rt *recordRuntime) reset(in inputRef) {
	rt.in, rt.part = in, in.part
	clear(rt.ops)
	rt.ops = rt.ops[:0]
	clear(rt.emits)
	rt.emits = rt.emits[:0]
}

// Get reads the record's own writes first, then the transaction's staged
// writes over committed state.
func (rt *recordRuntime) Get(store string, key []byte) ([]byte, bool, error) {
	for i := len(rt.ops) - 1; i >= 0; i-- {
		op := &rt.ops[i]
		if op.store == store && string(op.key) == string(key) {
			return op.value, !op.del, nil
		}
	}
	return rt.txn.staged.Get(store, rt.part, key)
}

// Put holds a write until the record succeeds.
func (rt *recordRuntime) Put(store string, key, value []byte) error {
	rt.ops = append(rt.ops, stateOp{store: store, key: key, value: value})
	return nil
}

// Delete holds a delete until the record succeeds.
func (rt *recordRuntime) Delete(store string, key []byte) error {
	rt.ops = append(rt.ops, stateOp{store: store, key: key, del: true})
	return nil
}

// Emit holds an output record until the record succeeds.
func (rt *recordRuntime) Emit(topic string, key, value []byte, ts time.Time, hdrs []topology.Header) error {
	rt.emits = append(rt.emits, &kgo.Record{
		Topic: topic, Key: key, Value: value, Timestamp: ts, Headers: toKgoHeaders(hdrs),
	})
	return nil
}

// flush moves the record's effects into the transaction: writes into the
// staged batch and the changelog, outputs into the producer.
func (rt *recordRuntime) flush() error {
	t := rt.txn
	for i := range rt.ops {
		op := &rt.ops[i]
		rec := &kgo.Record{Key: op.key}
		if op.del {
			if err := t.staged.Delete(op.store, rt.part, op.key); err != nil {
				return err
			}
		} else {
			if err := t.staged.Put(op.store, rt.part, op.key, op.value); err != nil {
				return err
			}
			rec.Value = op.value
		}
		t.produceChangelog(op.store, rt.part, rec)
	}
	for _, rec := range rt.emits {
		t.produce(t.ctx, rec, t.outputPromise(rt.in))
	}
	t.outputs += len(rt.emits)
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
