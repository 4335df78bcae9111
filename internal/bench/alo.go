package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/internal/taskrun"
	"github.com/exactly-stream/exactly/internal/tuning"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// aloLoop runs a topology at least once: a consumer group member with an
// idempotent producer and no transactions. Per batch (bounded by records
// and by the commit interval, like a transaction) it processes the records
// against a staged Pebble batch, producing outputs and changelog records;
// then it flushes the producer, and only when every record of the batch
// was acknowledged it applies the staged state and commits the batch's
// offsets. A crash between those steps replays the batch: outputs and
// state updates may repeat, nothing is lost.
type aloLoop struct {
	cl         *kgo.Client
	db         *state.DB
	topo       *topology.Topology
	changelogs map[string]string // store -> changelog topic
	dlq        string
	batcher    batcher
	counts     txnCounts
}

// aloOptions returns the client options of an at-least-once member of
// group reading input; changelogs are partitioned by hand.
func aloOptions(brokers []string, group, input string, changelogs map[string]string) []kgo.Opt {
	manual := make(map[string]bool)
	for _, t := range changelogs {
		manual[t] = true
	}
	return append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(input),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(), // a batch is committed before its partitions can move
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(250 * time.Millisecond), // the processor's default
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(partitioner{manual: manual}),
	}, tuning.ClientOpts()...) // the processor's client
}

// newALOLoop opens the state in dir and the client (with opts added);
// close releases both.
func newALOLoop(brokers []string, a app, dir string, b batcher, opts ...kgo.Opt) (*aloLoop, error) {
	topo, err := orders.OrderTopologyFor(a.topics)
	if err != nil {
		return nil, err
	}
	changelogs := make(map[string]string)
	for _, store := range orders.OrderStores() {
		changelogs[store] = processor.ChangelogTopic(a.group, store)
	}
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(aloOptions(brokers, a.group, a.topics.Orders, changelogs), opts...)...)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &aloLoop{cl: cl, db: db, topo: topo, changelogs: changelogs, dlq: a.topics.DLQ, batcher: b}, nil
}

func (l *aloLoop) close() error {
	l.cl.Close()
	return l.db.Close()
}

// run processes batches until ctx is cancelled; committed reports each
// committed batch's record count.
func (l *aloLoop) run(ctx context.Context, committed func(n int)) error {
	for ctx.Err() == nil {
		recs, err := poll(ctx, l.cl, l.batcher.size, time.Second)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			l.cl.AllowRebalance()
			continue
		}
		n, err := l.batch(ctx, recs)
		if err != nil {
			return err
		}
		l.counts.committed++
		committed(n)
	}
	return nil
}

// batch processes one batch and commits it: outputs acknowledged, then
// state applied, then offsets committed.
func (l *aloLoop) batch(ctx context.Context, first []*kgo.Record) (int, error) {
	defer l.cl.AllowRebalance()
	pctx := context.WithoutCancel(ctx)
	rt := &aloRuntime{loop: l, ctx: pctx, staged: l.db.NewStaged()}
	defer rt.staged.Discard()
	n, err := l.batcher.collect(ctx, l.cl, first, func(recs []*kgo.Record) error {
		for _, r := range recs {
			if err := rt.process(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	ectx, cancel := context.WithTimeout(pctx, 30*time.Second)
	defer cancel()
	if err := l.cl.Flush(ectx); err != nil {
		return n, fmt.Errorf("flushing: %w", err)
	}
	if err := rt.errs.Err(); err != nil {
		return n, fmt.Errorf("producing: %w", err)
	}
	if err := rt.staged.Apply(); err != nil {
		return n, err
	}
	if err := l.cl.CommitUncommittedOffsets(ectx); err != nil {
		return n, fmt.Errorf("committing offsets: %w", err)
	}
	return n, nil
}

// aloRuntime runs one batch's records. Like the processor, it holds a
// record's writes and outputs until the record succeeded (taskrun.Runtime),
// so a bad record leaves only its dead-letter record; it is also the
// batch's taskrun.Txn: writes go to the staged batch and the changelog,
// outputs to the producer.
type aloRuntime struct {
	loop   *aloLoop
	ctx    context.Context
	staged *state.Staged
	errs   kgo.FirstErrPromise
	rt     taskrun.Runtime
}

func (rt *aloRuntime) process(r *kgo.Record) error {
	rt.rt.Reset(rt, r.Partition)
	in := topology.Input{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	err := rt.loop.topo.Dispatch(rt.ctx, &rt.rt, &in)
	switch {
	case err == nil:
		_, err = rt.rt.Flush(&in)
		return err
	case topology.IsBadRecord(err):
		out := taskrun.DeadLetter(rt.loop.dlq, &in, err)
		rt.Emit(&out, &in)
		return nil
	}
	return err
}

func (rt *aloRuntime) Get(store string, part int32, key []byte) ([]byte, bool, error) {
	return rt.staged.Get(store, part, key)
}

func (rt *aloRuntime) Range(store string, part int32, lo, hi []byte, fn func(key, value []byte) bool) error {
	return rt.staged.Range(store, part, lo, hi, fn)
}

func (rt *aloRuntime) Put(store string, part int32, key, value []byte) error {
	if err := rt.staged.Put(store, part, key, value); err != nil {
		return err
	}
	rt.loop.cl.Produce(rt.ctx, &kgo.Record{Topic: rt.loop.changelogs[store], Partition: part, Key: key, Value: value}, rt.errs.Promise())
	return nil
}

func (rt *aloRuntime) Delete(store string, part int32, key []byte) error {
	if err := rt.staged.Delete(store, part, key); err != nil {
		return err
	}
	rt.loop.cl.Produce(rt.ctx, &kgo.Record{Topic: rt.loop.changelogs[store], Partition: part, Key: key}, rt.errs.Promise())
	return nil
}

func (rt *aloRuntime) Count(string, string, int64) {}

func (rt *aloRuntime) Emit(out *taskrun.Output, _ *topology.Input) {
	rec := &kgo.Record{Topic: out.Topic, Key: out.Key, Value: out.Value, Timestamp: out.Timestamp}
	for _, h := range out.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	rt.loop.cl.Produce(rt.ctx, rec, rt.errs.Promise())
}

// atLeastOnce measures the at-least-once loop over the input.
func (r *runner) atLeastOnce(ctx context.Context, name string, txnSize int, interval time.Duration) (Measurement, error) {
	a := newApp(r.cfg.TopicPrefix+name, r.input)
	defer r.cluster.cleanup(ctx, a.outputs(), a.group)
	if err := r.createOutputs(ctx, a); err != nil {
		return Measurement{}, err
	}
	dir, err := os.MkdirTemp(r.cfg.Dir, "exactly-bench-")
	if err != nil {
		return Measurement{}, err
	}
	defer os.RemoveAll(dir)
	prof := NewRequestProfile()
	m, err := measure(ctx, r.cfg.RunTimeout, r.inputCount, func(ctx context.Context, fl *finishLine) (txnCounts, error) {
		l, err := newALOLoop(r.cluster.brokers, a, dir, batcher{txnSize, interval}, append([]kgo.Opt{kgo.WithHooks(prof)}, r.cluster.opts...)...)
		if err != nil {
			return txnCounts{}, err
		}
		err = l.run(ctx, func(n int) { fl.add(int64(n)) })
		if cerr := l.close(); err == nil {
			err = cerr
		}
		return l.counts, err
	})
	if err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	m.Requests = prof.Stats()
	r.progress(name, "batch", "batches", m)
	return m, nil
}

// createOutputs creates the topics of a, as the processor does at start:
// the changelogs compacted.
func (r *runner) createOutputs(ctx context.Context, a app) error {
	changelogs := a.changelogs()
	for _, t := range a.outputs() {
		if err := r.cluster.createTopic(ctx, t, r.cfg.Partitions, slices.Contains(changelogs, t)); err != nil {
			return err
		}
	}
	return nil
}
