package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// errCrashed is returned by Run when a test's crash point fired.
var errCrashed = errors.New("mirror: crashed at a test crash point")

// maxAborts is how many transactions in a row may abort for a produce
// error before Run gives up.
const maxAborts = 8

// taken is a source record taken into the transaction loop, with the
// ownership of its partition at the moment it was taken: it may be copied
// only while that very ownership lasts.
type taken struct {
	r  *kgo.Record
	st *partState
}

// onAssigned checks the target topics of newly assigned source topics (a
// regex picks up new topics) before any record of them is fetched.
func (m *Mirror) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	topics := make([]string, 0, len(assigned))
	for t := range assigned {
		topics = append(topics, t)
	}
	if err := m.ensureTopics(ctx, topics); err != nil {
		m.setFatal(err)
	}
}

// adjustOffsets starts every newly assigned partition at its position in
// the target's offsets topic (at the log start when it has none), and
// records the ownership. kgo calls it after OnPartitionsAssigned, before it
// fetches any of these partitions.
func (m *Mirror) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	pos, err := ReadPositions(ctx, m.tgt, m.cfg.offsetsTopic, 2*m.cfg.txnTimeout)
	if err != nil {
		m.cfg.logger.Warn("reading positions on assignment", "err", err)
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for t, parts := range offsets {
		for p := range parts {
			st := &partState{next: -1, committed: -1, end: -1}
			if next, ok := pos[t][p]; ok {
				st.next, st.committed = next, next
				parts[p] = kgo.NewOffset().At(next).WithEpoch(-1)
			} else {
				parts[p] = kgo.NewOffset().AtStart()
			}
			m.mu.owned[tp{t, p}] = st
		}
	}
	m.cfg.logger.Info("partitions assigned", "partitions", offsets)
	return offsets, nil
}

// onRevoked forgets revoked or lost partitions and dooms the open
// transaction; it returns only once no commit is in flight. Since kgo gives
// these partitions to another member only after this callback returns, no
// commit of this instance can include them once another owns them (up to
// a loss kgo learns late: see the README's limits).
func (m *Mirror) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	n := 0
	for _, parts := range revoked {
		n += len(parts)
	}
	if n == 0 {
		return // a cooperative rebalance that took nothing from us
	}
	m.mu.Lock()
	for t, parts := range revoked {
		for _, p := range parts {
			delete(m.mu.owned, tp{t, p})
		}
	}
	m.mu.Unlock()
	m.epoch.Add(1)
	m.commitMu.Lock()
	//lint:ignore SA2001 the empty critical section waits for a commit in flight
	m.commitMu.Unlock()
	m.cfg.logger.Info("partitions revoked", "partitions", revoked)
}

// loop runs transactions until ctx is done or an error stops it.
func (m *Mirror) loop(ctx context.Context) error {
	var pending []taken // taken, not yet committed: kept across an abort
	aborts := 0
	for {
		if err := m.fatal(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if len(pending) == 0 {
			pending = m.poll(ctx, nil, m.cfg.maxRecords, m.cfg.fetchMaxWait)
			if len(pending) == 0 {
				continue
			}
		}
		left, cause, err := m.transact(ctx, pending)
		if err != nil {
			return err
		}
		pending = left
		if cause == nil { // committed, or aborted for a revoke: go on at once
			aborts = 0
			continue
		}
		aborts++
		if aborts >= maxAborts {
			return fmt.Errorf("mirror: %d transactions in a row aborted: %w", aborts, cause)
		}
		if !sleep(ctx, backoff(aborts)) {
			return nil
		}
	}
}

// poll fetches up to max records within wait and takes them: a record is
// taken only if its partition is owned and it comes after the records
// already taken of it (a fetch buffered before a revoke and a reassignment
// may repeat records).
func (m *Mirror) poll(ctx context.Context, into []taken, max int, wait time.Duration) []taken {
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	fs := m.src.PollRecords(pctx, max)
	for _, fe := range fs.Errors() {
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded), errors.Is(fe.Err, kgo.ErrClientClosed):
		default:
			var dl *kgo.ErrDataLoss
			if errors.As(fe.Err, &dl) {
				m.stats.dataLoss.Add(1)
			}
			m.cfg.logger.Warn("source fetch error; kgo retries", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		st := m.mu.owned[tp{p.Topic, p.Partition}]
		if st == nil || p.Err != nil {
			return
		}
		if p.LastStableOffset >= 0 {
			st.end = p.LastStableOffset
		}
		for _, r := range p.Records {
			if r.Offset < st.next {
				continue
			}
			st.next = r.Offset + 1
			into = append(into, taken{r, st})
		}
	})
	return into
}

// stillOwned keeps the records whose partition ownership is the one they
// were taken under.
func (m *Mirror) stillOwned(ts []taken) []taken {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := ts[:0:0]
	for _, t := range ts {
		if m.mu.owned[tp{t.r.Topic, t.r.Partition}] == t.st {
			out = append(out, t)
		}
	}
	return out
}

// txn is one target transaction being built.
type txn struct {
	epoch   int64
	records []taken
	bytes   int64
	next    map[tp]int64
	states  map[tp]*partState
	errs    *kgo.FirstErrPromise
}

// transact copies pending, and whatever more arrives within the commit
// interval, in one target transaction with their positions. After an
// abort, left are the records to copy again (those of partitions still
// owned) and cause is why it aborted, nil for a revoke. err is set when the
// loop must stop: fenced, or a commit whose outcome is unknown.
func (m *Mirror) transact(ctx context.Context, pending []taken) (left []taken, cause, err error) {
	t := &txn{epoch: m.epoch.Load(), next: make(map[tp]int64), states: make(map[tp]*partState), errs: new(kgo.FirstErrPromise)}
	pending = m.stillOwned(pending)
	if len(pending) == 0 {
		return nil, nil, nil
	}
	if err := m.tgt.BeginTransaction(); err != nil {
		return nil, nil, fmt.Errorf("beginning target transaction: %w", err)
	}
	// Produced with a context that outlives a stop request: a
	// transaction still ends with a commit when it can.
	pctx := context.WithoutCancel(ctx)
	m.produce(pctx, t, pending)
	deadline := time.Now().Add(m.cfg.commitInterval)
	for len(t.records) < m.cfg.maxRecords && ctx.Err() == nil && m.epoch.Load() == t.epoch {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		m.produce(pctx, t, m.poll(ctx, nil, m.cfg.maxRecords-len(t.records), wait))
	}
	if m.crashAt("produced") {
		return nil, nil, errCrashed
	}
	for p, next := range t.next {
		m.tgt.Produce(pctx, positionRecord(m.cfg.offsetsTopic, m.offsetsParts, p, next, m.cfg.transactionalID()), t.errs.Promise())
	}
	return m.end(ctx, t)
}

// produce sends records into the open transaction: partition p to
// partition p, key, value, headers and timestamp kept.
func (m *Mirror) produce(ctx context.Context, t *txn, ts []taken) {
	for _, tk := range ts {
		r := tk.r
		out := &kgo.Record{
			Topic:     m.cfg.targetTopic(r.Topic),
			Partition: r.Partition,
			Key:       r.Key,
			Value:     r.Value,
			Headers:   r.Headers,
			Timestamp: r.Timestamp,
		}
		m.tgt.Produce(ctx, out, t.errs.Promise())
		p := tp{r.Topic, r.Partition}
		t.next[p] = r.Offset + 1
		t.states[p] = tk.st
		t.bytes += int64(len(r.Key) + len(r.Value))
		for _, h := range r.Headers {
			t.bytes += int64(len(h.Key) + len(h.Value))
		}
	}
	t.records = append(t.records, ts...)
}

// end flushes and ends the transaction: commit only if every record was
// acknowledged and no revoke happened since it began.
func (m *Mirror) end(ctx context.Context, t *txn) (left []taken, cause, err error) {
	// Flush first so the produce results are known without waiting out
	// the linger; a failed record must never be skipped. The transaction
	// timeout bounds delivery (kgo's RecordDeliveryTimeout would count
	// from the copied, possibly old, record timestamps).
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.txnTimeout)
	cause = m.tgt.Flush(fctx)
	cancel()
	if cause == nil {
		cause = t.errs.Err()
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.txnTimeout)
	defer cancel()
	if m.crashAt("flushed") {
		return nil, nil, errCrashed
	}
	m.commitMu.Lock()
	try := kgo.TryCommit
	revoked := m.epoch.Load() != t.epoch
	if cause != nil || revoked {
		try = kgo.TryAbort
	}
	if try == kgo.TryAbort {
		// Records still buffered (a flush that timed out) must fail
		// before the abort.
		if err := m.tgt.AbortBufferedRecords(ectx); err != nil {
			m.cfg.logger.Warn("aborting buffered records", "err", err)
		}
	}
	if try == kgo.TryCommit && m.crashAt("committing") {
		m.commitMu.Unlock()
		return nil, nil, errCrashed
	}
	err = m.tgt.EndTransaction(ectx, try)
	m.commitMu.Unlock()
	switch {
	case err != nil && try == kgo.TryCommit:
		// The commit's outcome is unknown: retrying could copy twice.
		// Stop; a restart rebuilds from the offsets topic.
		return nil, nil, fmt.Errorf("committing target transaction: %w", err)
	case err != nil:
		return nil, nil, fmt.Errorf("aborting target transaction: %w", err)
	case try == kgo.TryCommit:
		m.committed(t)
		return nil, nil, nil
	}
	m.stats.aborted.Add(1)
	if isFenced(cause) {
		return nil, nil, fmt.Errorf("target transaction aborted: %w", cause)
	}
	m.cfg.logger.Info("target transaction aborted", "records", len(t.records), "revoked", revoked, "cause", cause)
	return m.stillOwned(t.records), cause, nil
}

func (m *Mirror) committed(t *txn) {
	m.stats.committed.Add(1)
	m.stats.records.Add(int64(len(t.records)))
	m.stats.bytes.Add(t.bytes)
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, next := range t.next {
		t.states[p].committed = next
	}
}

func (m *Mirror) crashAt(point string) bool { return m.crash != nil && m.crash(point) }

// isFenced reports an error that means another producer took this
// transactional ID: retrying cannot help.
func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.InvalidProducerIDMapping)
}

func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n, 6)
	return min(d, 5*time.Second)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
