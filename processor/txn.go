package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/internal/crashpoint"
	"github.com/exactly-stream/exactly/internal/groupscope"
	"github.com/exactly-stream/exactly/internal/tuning"
)

// session is one GroupTransactSession and what the loop keeps about it.
type session struct {
	*kgo.GroupTransactSession
	scope *groupscope.Scope
	// cancelClient cancels the client's context (kgo.WithContext), which
	// fails its requests in flight, a held JoinGroup included.
	cancelClient context.CancelFunc
	// ended is tasks.revokes as read before the last End: while revokes
	// differs, kgo's session has a revoke pending that dooms the next
	// transaction and drops further revoke callbacks.
	ended int64
}

// newSession creates the GroupTransactSession: read_committed, the stable
// transactional ID, changelog records partitioned by task, restore in the
// assignment callback.
func (p *Processor) newSession(ctx context.Context) (*session, error) {
	s := &session{scope: groupscope.New(ctx), ended: p.tasks.revokes.Load()}
	var clientCtx context.Context
	clientCtx, s.cancelClient = context.WithCancel(context.WithoutCancel(ctx))
	sess, err := p.newGroupSession(clientCtx, s.scope)
	if err != nil {
		s.scope.Close()
		s.cancelClient()
		return nil, err
	}
	s.GroupTransactSession = sess
	bals, _ := sess.Client().OptValue(kgo.Balancers).([]kgo.GroupBalancer)
	coop := len(bals) > 0
	for _, b := range bals {
		coop = coop && b.IsCooperative()
	}
	p.coop.Store(coop)
	p.tasks.follow(ownedBy(sess.Client(), p.topo.SourceTopics()))
	return s, nil
}

// ownedBy returns the partition numbers of topics that cl holds, as its
// committed offsets show them: kgo adds a partition once its offsets are
// fetched after the assignment and removes it on every revoke, whether or
// not the revoke reached the user's callback.
func ownedBy(cl *kgo.Client, topics []string) func() (map[int32]bool, bool) {
	return func() (map[int32]bool, bool) {
		offs := cl.CommittedOffsets()
		held := make(map[int32]bool)
		for _, t := range topics {
			for p := range offs[t] {
				held[p] = true
			}
		}
		return held, true
	}
}

func (p *Processor) newGroupSession(clientCtx context.Context, scope *groupscope.Scope) (*kgo.GroupTransactSession, error) {
	manual := make([]string, 0, len(p.changelogs))
	for _, t := range p.changelogs {
		manual = append(manual, t)
	}
	opts := []kgo.Opt{
		kgo.WithContext(clientCtx),
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
		kgo.OnPartitionsAssigned(scope.Guard(p.restoreAssigned)),
		kgo.OnPartitionsRevoked(scope.Guard(p.onRevoked)),
		kgo.OnPartitionsLost(scope.Guard(p.onLost)),
	}
	if id := p.cfg.groupInstanceID(); id != "" {
		// A static member (KIP-345): see StaticMembership and leaveGroup.
		opts = append(opts, kgo.InstanceID(id))
	}
	if len(p.topo.SourceTopics()) > 1 {
		// A task is a partition number: partition p of every input
		// (repartition topics included) must go to one member. The task
		// balancer (balancer.go) assigns tasks whole, cooperatively and
		// sticky: a membership change moves only the tasks balance needs,
		// and a moved task costs a restore. The range balancer stays in
		// the list, second: the broker picks a protocol every member
		// offers, by the members' preference, so a group still holding
		// members of a release that offered only range (a rolling
		// upgrade) balances by range until they are gone; range also
		// keeps partition p of every topic on one member. With both
		// listed, cooperative() is false: a revoke that takes nothing
		// counts as dooming the open transaction (newSession).
		opts = append(opts, kgo.Balancers(newTaskBalancer(), kgo.RangeBalancer()))
	}
	opts = append(opts, tuning.ClientOpts()...)
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

// closeSession fences off the session's callbacks, then closes it, waiting
// at most leaveTimeout for it to leave the group (see groupscope.Close).
func (p *Processor) closeSession(s *session) {
	s.scope.Close()
	groupscope.Close(s.Close, s.cancelClient, leaveTimeout, p.cfg.logger)
}

// leaveTimeout bounds how long closing a session waits to leave the group.
const leaveTimeout = groupscope.LeaveTimeout

// onRevoked forgets revoked (or lost) partitions and wakes the loop. The
// session itself makes the open transaction abort; their committed local
// state stays as a warm cache with its checkpoint.
func (p *Processor) onRevoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	crashpoint.Hit(crashpoint.InRevoked)
	revoked := partitionsOf(m)
	p.tasks.revoke(revoked)
	// kgo's session dooms the open transaction on every revoke but a
	// cooperative one that takes nothing (txn.go, the on_revoke wrapper).
	if len(revoked) > 0 || !p.cooperative() {
		p.tasks.revoked()
	}
	p.cfg.hooks.rebalance(nil, revoked)
}

// onLost is onRevoked for partitions lost (the member left the group or was
// dropped from it): the session dooms the open transaction whatever was lost.
func (p *Processor) onLost(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	crashpoint.Hit(crashpoint.InRevoked)
	lost := partitionsOf(m)
	p.tasks.revoke(lost)
	p.tasks.revoked()
	p.cfg.hooks.rebalance(nil, lost)
}

// revokedUnheard reports partitions that tasks.sync found revoked although
// no callback said so (kgo dropped it).
func (p *Processor) revokedUnheard(parts []int32) {
	p.cfg.logger.Info("partitions revoked without a callback (kgo's transaction session drops revoke callbacks until End); forgotten", "partitions", parts)
	p.cfg.hooks.rebalance(nil, parts)
}

// cooperative reports whether the session's group balancers are all
// cooperative. kgo knows which one the group chose, and does not say; with
// an eager one among them a revoke that takes nothing counts as dooming
// (it then costs an End with nothing open, never a missed abort).
func (p *Processor) cooperative() bool { return p.coop.Load() }

// runSession runs the transaction loop on one session until ctx is done or
// an error occurs. Closing the session leaves the group for a dynamic
// member; a static one stays, and the next session takes its place
// (membership.go).
func (p *Processor) runSession(ctx context.Context) error {
	s, err := p.newSession(ctx)
	if err != nil {
		return err
	}
	p.order.reset()
	defer func() {
		p.closeSession(s)
		p.tasks.reset()
	}()
	var aborts int
	var lastCause error
	for {
		if err := p.tasks.fatal(); err != nil {
			return err
		}
		recs, err := p.poll(ctx, s, p.cfg.maxRecords, p.pollWait())
		if err != nil || ctx.Err() != nil {
			return err
		}
		p.tasks.sync()
		if p.tasks.revokes.Load() != s.ended {
			// A revoke since the last End: kgo's session would abort the
			// next transaction for it, and drops revoke callbacks until
			// an End. End now, with nothing open; it rewinds to the
			// committed offsets, so recs are fetched again.
			if err := p.endIdle(ctx, s); err != nil {
				return err
			}
			continue
		}
		if len(recs) == 0 && !p.wallDue() {
			continue
		}
		crashpoint.Hit(crashpoint.AfterPoll)
		committed, cause, err := p.transact(ctx, s, recs)
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

// pollWait is how long a poll may wait: a second, or less when a
// wall-clock punctuator of a ready task is due sooner.
func (p *Processor) pollWait() time.Duration {
	wait := time.Second
	if at, ok := p.nextWall(); ok {
		wait = min(wait, max(time.Until(at), time.Millisecond))
	}
	return wait
}

// wallDue reports whether a wall-clock punctuator of a ready task is due:
// a transaction runs then even without records.
func (p *Processor) wallDue() bool {
	at, ok := p.nextWall()
	return ok && !time.Now().Before(at)
}

// endIdle ends the session's transaction state with no transaction open,
// which resets kgo's pending revoke. It sends nothing to the brokers.
func (p *Processor) endIdle(ctx context.Context, s *session) error {
	s.ended = p.tasks.revokes.Load()
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.txnTimeout)
	defer cancel()
	if _, err := s.End(ectx, kgo.TryAbort); err != nil {
		return fmt.Errorf("ending the session's transaction state after a revoke: %w", err)
	}
	p.cfg.logger.Debug("a revoke ended the session's transaction state; polling again from the committed offsets")
	return nil
}

// poll returns the next records, waiting at most wait. Fetch errors are
// kgo's to retry, except those that no retry can mend.
// A revoke ends the wait early (tasks.revoked).
func (p *Processor) poll(ctx context.Context, s *session, max int, wait time.Duration) ([]*kgo.Record, error) {
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	p.tasks.setWake(cancel)
	defer p.tasks.setWake(nil)
	fs := s.PollRecords(pctx, max)
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if fp.Err == nil && fp.LastStableOffset >= 0 {
			p.tasks.sawStable(fp.Topic, fp.Partition, fp.LastStableOffset)
		}
	})
	for _, fe := range fs.Errors() {
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded), errors.Is(fe.Err, kgo.ErrClientClosed):
		case errors.Is(fe.Err, kerr.TopicAuthorizationFailed), errors.Is(fe.Err, kerr.GroupAuthorizationFailed):
			return nil, fmt.Errorf("fetching %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		case errors.Is(fe.Err, kerr.InvalidSessionTimeout):
			return nil, configErr("session timeout", "the brokers refuse it (their group.min.session.timeout.ms and group.max.session.timeout.ms): %v", fe.Err)
		case errors.Is(fe.Err, kerr.FencedInstanceID):
			return nil, fmt.Errorf("fetching: the group replaced this member: %w", fe.Err) // Run decides (rejoinFencedInstance)
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
// bound, then ends. See DESIGN.md, "One transaction, one unit of work".
func (p *Processor) transact(ctx context.Context, s *session, first []*kgo.Record) (committed bool, cause, err error) {
	if err := s.Begin(); err != nil {
		return false, nil, fmt.Errorf("beginning transaction: %w", err)
	}
	// Records are produced with a context that outlives a shutdown request:
	// the transaction still ends with a commit when it can.
	t := p.newTxn(context.WithoutCancel(ctx), s.Produce)
	t.revokes = s.ended
	if p.joined != nil {
		t.order = p.newOrder(s.Client())
	}
	defer t.staged.Discard()
	deadline := t.start.Add(p.cfg.commitInterval)
	err = p.processAll(t, first)
	crashpoint.Hit(crashpoint.MidProduce)
	// Held records (order.go) do not count: they are not processed in
	// this transaction unless their turn comes, and a bound counting them
	// could end every transaction before the input they wait for arrives.
	// They are at most what the fetches return in one commit interval.
	for err == nil && !t.doomed && t.records < p.cfg.maxRecords && ctx.Err() == nil {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		if t.held() > 0 {
			// A task waits for an input: look again soon, a wait may
			// run out (TaskIdle) without a record arriving.
			wait = min(wait, p.cfg.fetchMaxWait)
		}
		var recs []*kgo.Record
		if recs, err = p.poll(ctx, s, p.cfg.maxRecords-t.records, wait); err == nil {
			err = p.processAll(t, recs)
		}
	}
	if err == nil && !t.doomed && p.hasWall {
		// Every ready task, records or not: an idle partition's
		// wall-clock punctuators fire too.
		err = t.punctuateWall(p.tasks.readyParts(), time.Now())
	}
	if err == nil && !t.doomed {
		err = t.finish()
	}
	return p.end(ctx, s, t, err)
}

// processAll runs records in order; records of joined topics go through
// the transaction's order (order.go), which runs them in timestamp order
// across the task's joined inputs. A record of a partition that is not
// ready (revoked since it was polled) dooms the transaction: the session
// will abort it anyway, and processing it could only waste work.
func (p *Processor) processAll(t *txn, recs []*kgo.Record) error {
	if p.tasks.revokes.Load() != t.revokes {
		t.doomed = true // a revoke: the session aborts this transaction
		return nil
	}
	for _, r := range recs {
		if !p.tasks.isReady(r.Partition) {
			if err := p.tasks.fatal(); err != nil {
				return err
			}
			t.doomed = true
			return nil
		}
		if t.order != nil && p.joined[r.Topic] != nil {
			t.order.add(r)
			continue
		}
		if err := t.process(r); err != nil {
			return err
		}
	}
	if t.order != nil {
		return t.order.drain(t)
	}
	return nil
}

// end ends the transaction: commit when everything was processed and every
// produced record was acknowledged, abort otherwise. Only a commit moves
// local state: the staged batch is applied with its checkpoints after End
// reports the commit, and dropped otherwise (invariant S1). An abort
// returns its cause (nil after a rebalance); err is set when the loop must
// not go on with this session.
func (p *Processor) end(ctx context.Context, s *session, t *txn, procErr error) (committed bool, cause, err error) {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.txnTimeout)
	defer cancel()
	ending := time.Now()
	try := kgo.TryCommit
	cause = procErr
	if cause == nil && !t.doomed {
		// Flush first so the produce results are known without waiting
		// out the linger; a failed record must never be skipped.
		if err := s.Client().Flush(ectx); err != nil {
			cause = fmt.Errorf("flushing transaction: %w", err)
		} else {
			cause = t.errs.Err() // the flush finished every promise
		}
	}
	if cause != nil || t.doomed {
		try = kgo.TryAbort
	}
	crashpoint.Hit(crashpoint.BeforeEnd)
	if testHookBeforeEnd != nil {
		testHookBeforeEnd()
	}
	// Held until the commit is applied: a restore waits for it (tasks).
	p.tasks.applyMu.Lock()
	s.ended = p.tasks.revokes.Load()
	committed, err = s.End(kgo.PreTxnCommitFnContext(ectx, t.commitOffsets), try)
	if errors.Is(err, errOffsetsDiverge) {
		p.cfg.logger.Warn("transaction aborted: the session's offsets differ from what it processed", "err", err)
		err = nil // an abort, as after a revoke the session did not pass on
	}
	if committed {
		t.endDur = time.Since(ending)
		if t.order != nil {
			t.order.rewindHeld()
		}
		crashpoint.Hit(crashpoint.AfterCommit)
		err := t.apply()
		p.tasks.applyMu.Unlock()
		if err != nil {
			return true, nil, fmt.Errorf("%w: applying a committed transaction: %w", ErrLocalState, err)
		}
		p.committed(t)
		p.keepClocks(t)
		p.purge.committed(t)
		return true, nil, nil
	}
	p.tasks.applyMu.Unlock()
	p.stats.aborted.Add(1)
	switch {
	case cause != nil:
	case err != nil:
		cause = err
	case !t.doomed && s.ended == t.revokes:
		cause = ErrTxnAborted
	}
	if cause == nil {
		p.cfg.logger.Info("transaction aborted", "records", t.records, "cause", "rebalance", "why", "partitions were revoked or lost while it was open")
	} else {
		p.cfg.logger.Info("transaction aborted", "records", t.records, "cause", cause)
	}
	p.cfg.hooks.abort(cause)
	switch {
	case procErr != nil:
		return false, cause, procErr
	case err != nil:
		return false, cause, fmt.Errorf("ending transaction: %w", err)
	}
	return false, cause, nil
}

// testHookBeforeEnd, when set (by tests only, before any processor runs),
// runs where crash point BeforeEnd is: the kill tests' helper processes
// SIGKILL themselves there without the crash-point build.
var testHookBeforeEnd func()

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
	p.stats.addEvents(t.events)
	for tp, off := range t.consumed {
		p.tasks.committedUpTo(tp.topic, tp.part, off+1)
	}
	p.cfg.hooks.commit(TxnInfo{Records: t.records, DeadLetter: t.dlq, Skipped: t.skipped, Outputs: t.outputs, Duration: time.Since(t.start), Ending: t.endDur})
}

// errOffsetsDiverge is what checkOffsetCommit refuses a commit with.
var errOffsetsDiverge = errors.New("processor: the offsets the session would commit are not those of the records processed")

// commitOffsets runs just before the session sends the transaction's
// TxnOffsetCommit: records a joined input held are taken out of it
// (order.commitProcessed), then checkOffsetCommit judges it.
func (t *txn) commitOffsets(req *kmsg.TxnOffsetCommitRequest) error {
	if t.order != nil {
		t.order.commitProcessed(t.consumed, req)
	}
	return t.checkOffsetCommit(req)
}

// held returns how many polled records the transaction holds, not yet
// processed (order.go).
func (t *txn) held() int {
	if t.order == nil {
		return 0
	}
	return t.order.held
}

// checkOffsetCommit runs just before the session sends the transaction's
// TxnOffsetCommit (kgo.PreTxnCommitFnContext): the offsets it commits must
// be exactly the next offsets of the records this transaction processed,
// partition for partition, since the changelog's offset records (and so
// the restore rule) and local state follow the processed records. A
// partition the session dropped from its offsets (a revoke it did not pass
// on) would commit outputs and state without their offsets: state ahead of
// the group; a partition it advanced past records never processed would
// commit offsets without their state: a restore that waits for offset
// records that never come. Either way the commit is refused, and the
// transaction aborts.
func (t *txn) checkOffsetCommit(req *kmsg.TxnOffsetCommitRequest) error {
	consumed := t.consumed
	if testHookConsumed != nil {
		consumed = testHookConsumed(consumed)
	}
	return offsetsMatch(consumed, req)
}

// testHookConsumed, when set (by tests only, before any processor runs),
// may replace what checkOffsetCommit compares the commit with: a test
// makes the session's offsets diverge from the records processed.
var testHookConsumed func(map[topicPart]int64) map[topicPart]int64

func offsetsMatch(consumed map[topicPart]int64, req *kmsg.TxnOffsetCommitRequest) error {
	n := 0
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			n++
			off, ok := consumed[topicPart{rt.Topic, rp.Partition}]
			if !ok || rp.Offset != off+1 {
				return fmt.Errorf("%w: %s partition %d: commit %d, processed through %d (%v)", errOffsetsDiverge, rt.Topic, rp.Partition, rp.Offset, off, ok)
			}
		}
	}
	if n != len(consumed) {
		for tp, off := range consumed {
			if !inRequest(req, tp) {
				return fmt.Errorf("%w: %s partition %d processed through %d, not in the commit", errOffsetsDiverge, tp.topic, tp.part, off)
			}
		}
	}
	return nil
}

func inRequest(req *kmsg.TxnOffsetCommitRequest, tp topicPart) bool {
	for _, rt := range req.Topics {
		if rt.Topic != tp.topic {
			continue
		}
		for _, rp := range rt.Partitions {
			if rp.Partition == tp.part {
				return true
			}
		}
	}
	return false
}
