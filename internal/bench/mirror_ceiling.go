package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/tuning"
)

// runCeiling is the mirror's ceiling: the bare transactional loop of
// ceiling.go (the same batcher: a first poll, then more polls until the
// record bound or the commit interval; Flush before End), pointed at the
// target. A plain consumer reads the source topic read_committed, with
// no group (it takes every partition), and one transactional producer on
// the target copies each transaction's records to the same partition of
// the target topic with key, value, headers and timestamp, then commits.
// There are no positions, no group callbacks and no ownership: what is
// left is the source fetch and the target transaction at the mirror's
// batch size. The clients are the mirror's (kgo defaults, acks=all).
func (r *mirrorRunner) runCeiling(ctx context.Context, spec copySpec, fl *finishLine) (txnCounts, error) {
	target := r.targetTopic(spec.name, spec.source)
	if err := r.tgt.createTopic(ctx, target, r.cfg.Partitions, false); err != nil {
		return txnCounts{}, err
	}
	var hooks []kgo.Opt
	if spec.prof != nil {
		hooks = append(hooks, kgo.WithHooks(spec.prof))
	}
	cons, err := r.src.client(append([]kgo.Opt{
		kgo.ConsumeTopics(spec.source),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500 * time.Millisecond), // the mirror's default
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, hooks...)...)
	if err != nil {
		return txnCounts{}, err
	}
	defer cons.Close()
	prod, err := r.tgt.client(append(append([]kgo.Opt{
		kgo.TransactionalID(r.cfg.TopicPrefix + spec.name),
		kgo.TransactionTimeout(max(10*time.Second, 4*spec.interval)),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, tuning.ClientOpts()...), hooks...)...) // the mirror's producer settings
	if err != nil {
		return txnCounts{}, err
	}
	defer prod.Close()
	if _, _, err := prod.ProducerID(ctx); err != nil {
		return txnCounts{}, fmt.Errorf("initializing the transactional ID: %w", err)
	}
	if spec.ready != nil {
		close(spec.ready)
	}
	l := &copyLoop{cons: cons, prod: prod, batcher: batcher{spec.txnSize, spec.interval}, target: target}
	for ctx.Err() == nil {
		recs, err := poll(ctx, cons, spec.txnSize, time.Second)
		if err != nil {
			return l.counts, err
		}
		if len(recs) == 0 {
			continue
		}
		if err := l.transact(ctx, recs, fl); err != nil {
			return l.counts, err
		}
	}
	return l.counts, nil
}

// copyLoop is the state of runCeiling's loop.
type copyLoop struct {
	cons, prod *kgo.Client
	batcher    batcher
	target     string
	counts     txnCounts
}

// transact copies first, and what more arrives within the commit interval,
// in one target transaction. An abort is an error: nothing here rewinds,
// so the records would be lost.
func (l *copyLoop) transact(ctx context.Context, first []*kgo.Record, fl *finishLine) error {
	if err := l.prod.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	pctx := context.WithoutCancel(ctx)
	var errs kgo.FirstErrPromise
	n, err := l.batcher.collect(ctx, l.cons, first, func(recs []*kgo.Record) error {
		for _, r := range recs {
			l.prod.Produce(pctx, &kgo.Record{
				Topic: l.target, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp,
			}, errs.Promise())
		}
		return nil
	})
	ectx, cancel := context.WithTimeout(pctx, 30*time.Second)
	defer cancel()
	if err == nil {
		if err = l.prod.Flush(ectx); err == nil {
			err = errs.Err()
		}
	}
	try := kgo.TryCommit
	if err != nil {
		try = kgo.TryAbort
		_ = l.prod.AbortBufferedRecords(ectx)
	}
	if endErr := l.prod.EndTransaction(ectx, try); endErr != nil {
		return errors.Join(err, fmt.Errorf("ending transaction: %w", endErr))
	}
	if err != nil {
		l.counts.aborted++
		return fmt.Errorf("copying a transaction of %d records: %w", n, err)
	}
	l.counts.committed++
	fl.add(int64(n))
	return nil
}
