package processor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newSession creates the GroupTransactSession: read_committed, the stable
// transactional ID, changelog records partitioned by task, restore in the
// assignment callback.
func (p *Processor) newSession(scope *sessionScope) (*kgo.GroupTransactSession, error) {
	manual := make([]string, 0, len(p.changelogs))
	for _, t := range p.changelogs {
		manual = append(manual, t)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(p.cfg.brokers...),
		kgo.WithLogger(p.kgoLogger()),
		kgo.ConsumerGroup(p.cfg.group),
		// Group members show their transactional ID (doctor, kadm).
		kgo.ClientID(p.cfg.transactionalID()),
		kgo.ConsumeTopics(p.topo.SourceTopics()...),
		kgo.TransactionalID(p.cfg.transactionalID()),
		kgo.TransactionTimeout(p.cfg.txnTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(p.cfg.fetchMaxWait),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(newPartitioner(manual)),
		kgo.OnPartitionsAssigned(scope.guard(p.restoreAssigned)),
		kgo.OnPartitionsRevoked(scope.guard(p.onRevoked)),
		kgo.OnPartitionsLost(scope.guard(p.onRevoked)),
	}
	opts = append(opts, ClientTuning()...)
	sess, err := kgo.NewGroupTransactSession(append(opts, p.cfg.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: creating transaction session: %w", ErrConfig, err)
	}
	if err := p.checkClient(sess.Client()); err != nil {
		sess.Close()
		return nil, err
	}
	return sess, nil
}

// ClientTuning returns the kgo options the processor's transaction session
// sets for latency, so that a comparison (the bench's bare-session ceiling)
// runs the same client. User options (KgoOpts) override them.
//
//   - kgo retries CONCURRENT_TRANSACTIONS and leader moves after a metadata
//     refresh; its default minimum metadata age (5 s) stalls the next
//     transaction that long on a real cluster.
//   - With transaction protocol v2 (KIP-890) the first produce of a
//     transaction gets CONCURRENT_TRANSACTIONS while the coordinator still
//     completes the previous one, and kgo's produce path backs off by its
//     general retry backoff: 250 ms, doubling, so a busy loop stalls a
//     quarter second or more per transaction. Java backs off 20 ms on this
//     error (and 100 ms to 1 s on others). The backoff here starts at
//     20 ms and doubles to 1 s, with jitter.
//   - With transaction protocol v1 kgo adds a transaction's partitions with
//     one AddPartitionsToTxn per broker, sent at once; the coordinator
//     takes one and answers the others CONCURRENT_TRANSACTIONS, and kgo
//     retries them after ConcurrentTransactionsBackoff (20 ms). On the
//     three-node Kafka of BENCHMARKS.md a transaction of 100 records met
//     four such retries on average; 5 ms instead took the bare loop from
//     1,523 to 2,614-2,711 records/s (cmd/txnprobe). kgo lengthens the
//     backoff itself once the error lasts over a second.
func ClientTuning() []kgo.Opt {
	return []kgo.Opt{
		kgo.MetadataMinAge(time.Second),
		kgo.RetryBackoffFn(retryBackoff),
		kgo.ConcurrentTransactionsBackoff(5 * time.Millisecond),
	}
}

func retryBackoff(tries int) time.Duration {
	d := min(20*time.Millisecond<<min(max(tries-1, 0), 6), time.Second)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// checkClient refuses client settings that would break exactly-once, which
// user kgo options could have set.
func (p *Processor) checkClient(cl *kgo.Client) error {
	switch {
	// kgo reports the isolation level as its wire value: 1 is read_committed.
	case cl.OptValue(kgo.FetchIsolationLevel) != int8(1):
		return configErr("isolation level", "must be read_committed (Java isolation.level)")
	case cl.OptValue(kgo.RequiredAcks) != kgo.AllISRAcks():
		return configErr("acks", "must be all (Java acks=all)")
	case cl.OptValue(kgo.DisableIdempotentWrite) == true:
		return configErr("idempotence", "must be enabled (Java enable.idempotence)")
	}
	if d, _ := cl.OptValue(kgo.RecordDeliveryTimeout).(time.Duration); d > 0 {
		// kgo measures it from each record's timestamp, not from when it
		// was produced; outputs carry their input's timestamp.
		return configErr("record delivery timeout", "%s: kgo counts it from the record timestamp, which outputs take from their input, so any input older than that (a backlog, a replay) would expire before it is sent; leave it unset: the processor bounds delivery by the transaction timeout", d)
	}
	if d, _ := cl.OptValue(kgo.TransactionTimeout).(time.Duration); d <= p.cfg.commitInterval {
		return configErr("transaction timeout", "%s must exceed the commit interval %s", d, p.cfg.commitInterval)
	}
	return nil
}

// leaveTimeout bounds how long closing a session waits to leave the group.
// kgo sends JoinGroup with the client's context, and Close waits for its
// answer before it leaves: during a rebalance the coordinator holds that
// answer until every member rejoined or the rebalance timeout (60 s by
// default) passed, longer than a deployment's grace period (Kubernetes: 30
// s) leaves a stopping process. The transaction is ended by then, so
// nothing is lost by going on: the group drops the member at its session
// timeout, and the abandoned close finishes in the background.
const leaveTimeout = 10 * time.Second

// sessionScope fences off a session's group callbacks once the session
// closes. kgo gives a callback the client's context, which ends only once
// the client is closed, and the close waits for the callback; and a close
// that closeSession stopped waiting for may still run callbacks later,
// while the next session runs on the same tasks and state. So each
// session's callbacks run under its scope: closing it cancels a running
// restore, waits for it to return, and makes later callbacks return at
// once.
type sessionScope struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.RWMutex
	closed bool
}

func newSessionScope(ctx context.Context) *sessionScope {
	s := &sessionScope{}
	s.ctx, s.cancel = context.WithCancel(ctx)
	return s
}

// guard wraps a group callback: it runs with the scope's context, and not
// at all once the scope is closed.
func (s *sessionScope) guard(fn func(context.Context, *kgo.Client, map[string][]int32)) func(context.Context, *kgo.Client, map[string][]int32) {
	return func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if !s.closed {
			fn(s.ctx, cl, m)
		}
	}
}

func (s *sessionScope) close() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}

// closeSession fences off the session's callbacks, then closes sess,
// waiting at most leaveTimeout for it to leave the group.
func (p *Processor) closeSession(sess *kgo.GroupTransactSession, scope *sessionScope) {
	scope.close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sess.Close()
	}()
	select {
	case <-done:
	case <-time.After(leaveTimeout):
		p.cfg.logger.Warn("leaving the group takes too long (a rebalance holds our JoinGroup); going on without waiting: the group drops this member at its session timeout", "waited", leaveTimeout)
	}
}

// onRevoked marks revoked (or lost) partitions not ready. The session
// itself makes the open transaction abort; their committed local state
// stays as a warm cache with its checkpoint.
func (p *Processor) onRevoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	crashPoint(CrashInRevoked)
	p.tasks.revokes.Add(1)
	var revoked []int32
	for _, parts := range m {
		for _, part := range parts {
			p.tasks.revoke(part)
			revoked = append(revoked, part)
		}
	}
	p.cfg.hooks.rebalance(nil, revoked)
}

// runSession runs the transaction loop on one session until ctx is done or
// an error occurs. Closing the session leaves the group.
func (p *Processor) runSession(ctx context.Context) error {
	scope := newSessionScope(ctx)
	sess, err := p.newSession(scope)
	if err != nil {
		scope.close()
		return err
	}
	defer func() {
		p.closeSession(sess, scope)
		p.tasks.reset()
	}()
	var aborts int
	var lastCause error
	for {
		if err := p.tasks.fatal(); err != nil {
			return err
		}
		recs, err := p.poll(ctx, sess, p.cfg.maxRecords, time.Second)
		if err != nil || ctx.Err() != nil {
			return err
		}
		if len(recs) == 0 {
			continue
		}
		crashPoint(CrashAfterPoll)
		committed, cause, err := p.transact(ctx, sess, recs)
		switch {
		case err != nil:
			return err
		case committed:
			aborts, lastCause = 0, nil
			continue
		case cause == nil:
			continue // a rebalance: the session rewound; go on at once
		case IsFatal(cause):
			return cause // not authorized, say: retrying cannot help
		case isFenced(cause):
			return cause // the client is fenced for good; Run decides (twin or timeout)
		case lastCause != nil && sameCause(cause, lastCause):
			aborts++
		default:
			aborts = 1
		}
		lastCause = cause
		if aborts >= p.cfg.maxAborts {
			return &AbortLimitError{Aborts: aborts, Err: cause}
		}
		if !sleep(ctx, backoff(aborts-1)) {
			return nil
		}
	}
}

// poll returns the next records, waiting at most wait. Fetch errors are
// kgo's to retry, except those that no retry can mend.
func (p *Processor) poll(ctx context.Context, sess *kgo.GroupTransactSession, max int, wait time.Duration) ([]*kgo.Record, error) {
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	fs := sess.PollRecords(pctx, max)
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if fp.Err == nil && fp.LastStableOffset >= 0 {
			p.tasks.sawStable(fp.Partition, fp.LastStableOffset)
		}
	})
	for _, fe := range fs.Errors() {
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded), errors.Is(fe.Err, kgo.ErrClientClosed):
		case errors.Is(fe.Err, kerr.TopicAuthorizationFailed), errors.Is(fe.Err, kerr.GroupAuthorizationFailed):
			return nil, fmt.Errorf("fetching %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		case errors.Is(fe.Err, kerr.InvalidSessionTimeout):
			return nil, configErr("session timeout", "the brokers refuse it (their group.min.session.timeout.ms and group.max.session.timeout.ms): %v", fe.Err)
		case errors.Is(fe.Err, kerr.InvalidGroupID), errors.Is(fe.Err, kerr.InconsistentGroupProtocol), errors.Is(fe.Err, kerr.GroupMaxSizeReached):
			return nil, configErr("group", "the brokers refuse this member of group %s: %v", p.cfg.group, fe.Err)
		default:
			p.cfg.logger.Warn("fetch error; kgo retries", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
	}
	return fs.Records(), nil
}

// transact runs one transaction: it begins, processes the first records
// and whatever more arrives within the commit interval up to the record
// bound, then ends. See ARCHITECTURE.md, "One transaction = one unit of
// work".
func (p *Processor) transact(ctx context.Context, sess *kgo.GroupTransactSession, first []*kgo.Record) (committed bool, cause, err error) {
	if err := sess.Begin(); err != nil {
		return false, nil, fmt.Errorf("beginning transaction: %w", err)
	}
	// Records are produced with a context that outlives a shutdown request:
	// the transaction still ends with a commit when it can.
	t := p.newTxn(context.WithoutCancel(ctx), sess.Produce)
	t.revokes = p.tasks.revokes.Load()
	defer t.staged.Discard()
	deadline := t.start.Add(p.cfg.commitInterval)
	err = p.processAll(t, first)
	crashPoint(CrashMidProduce)
	for err == nil && !t.doomed && t.records < p.cfg.maxRecords && ctx.Err() == nil {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		var recs []*kgo.Record
		if recs, err = p.poll(ctx, sess, p.cfg.maxRecords-t.records, wait); err == nil {
			err = p.processAll(t, recs)
		}
	}
	if err == nil && !t.doomed {
		err = t.finish()
	}
	return p.end(ctx, sess, t, err)
}

// processAll runs records in order. A record of a partition that is not
// ready (revoked since it was polled) dooms the transaction: the session
// will abort it anyway, and processing it could only waste work.
func (p *Processor) processAll(t *txn, recs []*kgo.Record) error {
	for _, r := range recs {
		if !p.tasks.isReady(r.Partition) {
			if err := p.tasks.fatal(); err != nil {
				return err
			}
			t.doomed = true
			return nil
		}
		if err := t.process(r); err != nil {
			return err
		}
	}
	return nil
}

// end ends the transaction: commit when everything was processed and every
// produced record was acknowledged, abort otherwise. Only a commit moves
// local state: the staged batch is applied with its checkpoints after End
// reports the commit, and dropped otherwise (invariant S1). An abort
// returns its cause (nil after a rebalance); err is set when the loop must
// not go on with this session.
func (p *Processor) end(ctx context.Context, sess *kgo.GroupTransactSession, t *txn, procErr error) (committed bool, cause, err error) {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.txnTimeout)
	defer cancel()
	try := kgo.TryCommit
	cause = procErr
	if cause == nil && !t.doomed {
		// Flush first so the produce results are known without waiting
		// out the linger; a failed record must never be skipped.
		if err := sess.Client().Flush(ectx); err != nil {
			cause = fmt.Errorf("flushing transaction: %w", err)
		} else {
			cause = t.errs.Err() // the flush finished every promise
		}
	}
	if cause != nil || t.doomed {
		try = kgo.TryAbort
	}
	crashPoint(CrashBeforeEnd)
	committed, err = sess.End(ectx, try)
	if committed {
		crashPoint(CrashAfterCommit)
		if err := t.apply(); err != nil {
			return true, nil, fmt.Errorf("%w: applying a committed transaction: %w", ErrLocalState, err)
		}
		p.committed(t)
		return true, nil, nil
	}
	p.stats.aborted.Add(1)
	switch {
	case cause != nil:
	case err != nil:
		cause = err
	case !t.doomed && p.tasks.revokes.Load() == t.revokes:
		cause = ErrTxnAborted
	}
	p.cfg.logger.Info("transaction aborted", "records", t.records, "cause", cause)
	p.cfg.hooks.abort(cause)
	switch {
	case procErr != nil:
		return false, cause, procErr
	case err != nil:
		return false, cause, fmt.Errorf("ending transaction: %w", err)
	}
	return false, cause, nil
}

// sameCause reports whether two abort causes are the same failure: the
// same Kafka error code, or the same sentinel.
func sameCause(a, b error) bool {
	var ka, kb *kerr.Error
	if errors.As(a, &ka) && errors.As(b, &kb) {
		return ka.Code == kb.Code
	}
	return errors.Is(a, b) || errors.Is(b, a)
}

func (p *Processor) committed(t *txn) {
	p.stats.committed.Add(1)
	p.stats.records.Add(int64(t.records))
	p.stats.dlq.Add(int64(t.dlq))
	p.stats.skipped.Add(int64(t.skipped))
	for tp, off := range t.consumed {
		p.tasks.committedUpTo(tp.part, off+1)
	}
	p.cfg.hooks.commit(TxnInfo{Records: t.records, DeadLetter: t.dlq, Skipped: t.skipped, Outputs: t.outputs, Duration: time.Since(t.start)})
}
