package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/internal/tuning"
	"github.com/exactly-stream/exactly/processor"
)

// partitioner is the processor's: changelog records go to the partition set
// on them (the task's), everything else by key (murmur2, as Java does).
type partitioner struct {
	manual map[string]bool
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}

// poll returns up to max records, waiting at most wait.
func poll(ctx context.Context, cl interface {
	PollRecords(context.Context, int) kgo.Fetches
}, max int, wait time.Duration) ([]*kgo.Record, error) {
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	fs := cl.PollRecords(pctx, max)
	var err error
	fs.EachError(func(t string, p int32, e error) {
		if !errors.Is(e, context.Canceled) && !errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, kgo.ErrClientClosed) {
			err = errors.Join(err, fmt.Errorf("fetching %s partition %d: %w", t, p, e))
		}
	})
	return fs.Records(), err
}

// batcher collects one transaction's (or at-least-once batch's) input the
// way the processor does: the first poll, then more polls until the record
// bound or the commit interval.
type batcher struct {
	size     int
	interval time.Duration
}

// collect calls each on the records of first and of further polls, and
// returns the number of records taken.
func (b batcher) collect(ctx context.Context, cl interface {
	PollRecords(context.Context, int) kgo.Fetches
}, first []*kgo.Record, each func([]*kgo.Record) error) (int, error) {
	deadline := time.Now().Add(b.interval)
	n := len(first)
	if err := each(first); err != nil {
		return n, err
	}
	for n < b.size && ctx.Err() == nil {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		recs, err := poll(ctx, cl, b.size-n, wait)
		if err != nil {
			return n, err
		}
		n += len(recs)
		if err := each(recs); err != nil {
			return n, err
		}
	}
	return n, nil
}

// ceilingLoop is the bare transactional loop: a GroupTransactSession
// that, per input record, produces an event-sized record keyed like the
// event and, for each store write of the order service, a record of the
// changelog record's size to the input's partition of that store's
// changelog topic (the customer keyed like the input, the order id with a
// key of the order id's size), and per partition and transaction one
// offset-sized record to each changelog, as the processor does; no
// decoding, no state.
type ceilingLoop struct {
	sess      *kgo.GroupTransactSession
	batcher   batcher
	events    string
	customers string // changelog of orders.StoreCustomers
	orderIDs  string // changelog of orders.StoreOrderIDs
	sizes     outputSizes
	zeros     []byte // values
	keys      []byte // order id keys, not NUL (a NUL first byte marks offset records)
	counts    txnCounts
}

func (r *runner) ceiling(ctx context.Context, name string, txnSize int, interval time.Duration) (Measurement, error) {
	group := r.cfg.TopicPrefix + name
	events := group + "-events"
	customers := processor.ChangelogTopic(group, orders.StoreCustomers)
	orderIDs := processor.ChangelogTopic(group, orders.StoreOrderIDs)
	defer r.cluster.cleanup(ctx, []string{events, customers, orderIDs}, group)
	for _, t := range []struct {
		name    string
		compact bool
	}{{events, false}, {customers, true}, {orderIDs, true}} {
		if err := r.cluster.createTopic(ctx, t.name, r.cfg.Partitions, t.compact); err != nil {
			return Measurement{}, err
		}
	}
	prof := NewRequestProfile()
	// As many bare loops as the pipeline has transaction loops, each its
	// own session and transactional ID in the one group: the pipeline's
	// loops overlap one loop's commit with another's processing, and so
	// do these.
	loops := cmp.Or(r.loops, r.cfg.Loops)
	m, err := measure(ctx, r.cfg.RunTimeout, r.inputCount, func(ctx context.Context, fl *finishLine) (txnCounts, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			counts txnCounts
			errs   error
		)
		for i := range loops {
			wg.Go(func() {
				c, err := r.runCeilingLoop(ctx, fl, prof, fmt.Sprintf("%s-%d", group, i+1), group, txnSize, interval, events, customers, orderIDs)
				mu.Lock()
				defer mu.Unlock()
				counts.committed += c.committed
				counts.aborted += c.aborted
				if err != nil {
					errs = errors.Join(errs, err)
					cancel() // one loop failed: the run has
				}
			})
		}
		wg.Wait()
		return counts, errs
	})
	if err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	m.Requests = prof.Stats()
	r.progress(name, "transaction", "transactions", m)
	return m, nil
}

// runCeilingLoop runs one bare loop of the ceiling under the transactional
// ID txnID until ctx is done.
func (r *runner) runCeilingLoop(ctx context.Context, fl *finishLine, prof *RequestProfile, txnID, group string, txnSize int, interval time.Duration, events, customers, orderIDs string) (txnCounts, error) {
	sess, err := kgo.NewGroupTransactSession(append(append(r.cluster.seeds(),
		kgo.WithHooks(prof),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(r.input),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(max(10*time.Second, 4*interval)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(250*time.Millisecond), // the processor's default
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(partitioner{manual: map[string]bool{customers: true, orderIDs: true}}),
	), tuning.ClientOpts()...)..., // the processor's client
	)
	if err != nil {
		return txnCounts{}, err
	}
	defer sess.Close()
	l := &ceilingLoop{
		sess: sess, batcher: batcher{txnSize, interval}, events: events, customers: customers, orderIDs: orderIDs,
		sizes: r.sizes, zeros: make([]byte, r.maxOutput), keys: bytes.Repeat([]byte("k"), r.maxOutput),
	}
	err = l.run(ctx, fl)
	return l.counts, err
}

func (l *ceilingLoop) run(ctx context.Context, fl *finishLine) error {
	for ctx.Err() == nil {
		recs, err := poll(ctx, l.sess, l.batcher.size, time.Second)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			continue
		}
		if err := l.transact(ctx, recs, fl); err != nil {
			return err
		}
	}
	return nil
}

func (l *ceilingLoop) transact(ctx context.Context, first []*kgo.Record, fl *finishLine) error {
	if err := l.sess.Begin(); err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	pctx := context.WithoutCancel(ctx)
	var errs kgo.FirstErrPromise
	last := make(map[int32]int64)
	n, err := l.batcher.collect(ctx, l.sess, first, func(recs []*kgo.Record) error {
		for _, r := range recs {
			last[r.Partition] = r.Offset
			sz := l.sizes.of(r.Partition, r.Offset)
			if sz.event > 0 {
				l.sess.Produce(pctx, &kgo.Record{Topic: l.events, Key: r.Key, Value: l.zeros[:sz.event], Timestamp: r.Timestamp}, errs.Promise())
			}
			if sz.customer > 0 {
				l.sess.Produce(pctx, &kgo.Record{Topic: l.customers, Partition: r.Partition, Key: r.Key, Value: l.zeros[:sz.customer]}, errs.Promise())
			}
			if sz.orderID > 0 {
				l.sess.Produce(pctx, &kgo.Record{Topic: l.orderIDs, Partition: r.Partition, Key: l.keys[:sz.orderIDKey], Value: l.zeros[:sz.orderID]}, errs.Promise())
			}
		}
		return nil
	})
	for part, off := range last {
		for _, changelog := range []string{l.customers, l.orderIDs} {
			l.sess.Produce(pctx, &kgo.Record{
				Topic: changelog, Partition: part, Key: []byte("\x00offset/" + l.events),
				Value: binary.BigEndian.AppendUint64(nil, uint64(off)),
			}, errs.Promise())
		}
	}
	ectx, cancel := context.WithTimeout(pctx, 30*time.Second)
	defer cancel()
	try := kgo.TryCommit
	if err == nil {
		if err = l.sess.Client().Flush(ectx); err == nil {
			err = errs.Err()
		}
	}
	if err != nil {
		try = kgo.TryAbort
	}
	committed, endErr := l.sess.End(ectx, try)
	switch {
	case endErr != nil:
		return errors.Join(err, fmt.Errorf("ending transaction: %w", endErr))
	case err != nil:
		return err
	case committed:
		l.counts.committed++
		fl.add(int64(n))
	default:
		l.counts.aborted++
	}
	return nil
}
