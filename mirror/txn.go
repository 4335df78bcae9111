package mirror

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/crashpoint"
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

// adjustOffsets takes ownership of newly assigned partitions. kgo calls it
// after OnPartitionsAssigned, before it fetches any of them. In order:
//  1. it initializes each partition's transactional ID
//     (<name>/<topic>/<partition>): that fences every earlier owner of the
//     partition, a zombie too, and ends (commits or aborts) the
//     transaction it left open;
//  2. only then it reads the positions from the offsets topic, so they
//     include every commit an earlier owner can ever make: up to a
//     barrier it writes first (barrier), past the records of those
//     commits whatever the high watermark a restarted broker reports;
//  3. it lists the target partitions' ends, the sync point of the first
//     new transaction (no earlier owner can write there any more);
//  4. it starts every partition at its position (at the log start when it
//     has none).
func (m *Mirror) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var parts []tp
	for t, ps := range offsets {
		for p := range ps {
			parts = append(parts, tp{t, p})
		}
	}
	states, err := m.initPartitions(ctx, parts)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			m.setFatal(err)
		}
		return nil, err
	}
	fail := func(err error) (map[string]map[int32]kgo.Offset, error) {
		m.closeStates(slices.Collect(maps.Values(states)), false)
		m.cfg.logger.Warn("taking newly assigned partitions", "err", err)
		return nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, 2*m.cfg.txnTimeout)
	barriers, err := m.barrier(bctx)
	cancel()
	if err != nil {
		return fail(err)
	}
	pos, err := readPositionsTo(ctx, m.tgt, m.cfg.offsetsTopic, 2*m.cfg.txnTimeout, barriers)
	if err != nil {
		return fail(err)
	}
	ends, err := m.targetEnds(ctx, parts)
	if err != nil {
		return fail(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range parts {
		st := states[p]
		st.sync = Sync{Source: 0, Target: ends[p]}
		if ps, ok := pos[p.topic][p.part]; ok {
			st.next, st.committed = ps.Next, ps.Next
			st.sync.Source = ps.Next
			offsets[p.topic][p.part] = kgo.NewOffset().At(ps.Next).WithEpoch(-1)
		} else {
			offsets[p.topic][p.part] = kgo.NewOffset().AtStart()
		}
		if old := m.mu.owned[p]; old != nil { // not revoked in between: retire it now
			m.mu.retired = append(m.mu.retired, old)
		}
		m.mu.owned[p] = st
	}
	m.cfg.logger.Info("partitions assigned", "partitions", offsets)
	return offsets, nil
}

// initPartitions creates and initializes the transactional producers of
// parts, concurrently.
func (m *Mirror) initPartitions(ctx context.Context, parts []tp) (map[tp]*partState, error) {
	states := make(map[tp]*partState, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, p := range parts {
		wg.Go(func() {
			id := m.cfg.partitionTxnID(p)
			prod, err := kgo.NewClient(m.producerOpts(id)...)
			if err != nil {
				errs[i] = fmt.Errorf("%w: creating the producer of %s: %w", ErrConfig, p, err)
				return
			}
			// InitProducerID bumps the ID's epoch: earlier owners
			// are fenced, their open transaction ended.
			if _, _, err := prod.ProducerID(ctx); err != nil {
				prod.Close()
				errs[i] = fmt.Errorf("initializing transactional ID %s on the target: %w", id, err)
				return
			}
			mu.Lock()
			states[p] = &partState{next: -1, committed: -1, end: -1, txnID: id, prod: prod}
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		m.closeStates(slices.Collect(maps.Values(states)), false)
		return nil, err
	}
	return states, nil
}

// targetEnds lists the high watermarks of the target partitions of parts.
func (m *Mirror) targetEnds(ctx context.Context, parts []tp) (map[tp]int64, error) {
	var topics []string
	for _, p := range parts {
		if t := m.cfg.targetTopic(p.topic); !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	listed, err := m.tgtAdm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of the target topics: %w", err)
	}
	out := make(map[tp]int64, len(parts))
	for _, p := range parts {
		o, ok := listed.Lookup(m.cfg.targetTopic(p.topic), p.part)
		if !ok {
			return nil, fmt.Errorf("listing the end offsets of the target topics: %s partition %d missing", m.cfg.targetTopic(p.topic), p.part)
		}
		out[p] = o.Offset
	}
	return out, nil
}

// onRevoked forgets revoked or lost partitions, dooms the open
// transaction, and returns only once no commit is in flight. Since kgo
// gives these partitions to another member only after this callback
// returns, no commit of this instance can include them once another owns
// them; and whatever this instance believes, the new owner's
// initialization fences its producers of those partitions.
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
			if st := m.mu.owned[tp{t, p}]; st != nil {
				m.mu.retired = append(m.mu.retired, st)
				delete(m.mu.owned, tp{t, p})
			}
		}
	}
	m.mu.Unlock()
	m.epoch.Add(1)
	m.commitMu.Lock()
	//lint:ignore SA2001 the empty critical section waits for a commit in flight
	m.commitMu.Unlock()
	m.cfg.logger.Info("partitions revoked", "partitions", revoked)
}

// closeRetired aborts and closes the producers of revoked partitions. Only
// the loop calls it, between transactions: it alone uses the producers.
func (m *Mirror) closeRetired() {
	m.mu.Lock()
	sts := m.mu.retired
	m.mu.retired = nil
	m.mu.Unlock()
	if len(sts) > 0 {
		m.closeStates(sts, true)
	}
}

// loop runs transactions until ctx is done or an error stops it.
func (m *Mirror) loop(ctx context.Context) error {
	var pending []taken // taken, not yet committed: kept across an abort
	aborts := 0
	for {
		m.closeRetired()
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
		if m.crashAt("polled") {
			return errCrashed
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

// owns reports whether st is still the state of its partition.
func (m *Mirror) owns(p tp, st *partState) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.owned[p] == st
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

// txn is one round of target transactions being built: one transaction per
// source partition with records, each on the partition's own producer.
type txn struct {
	epoch   int64
	records []taken
	parts   map[tp]*partTxn
}

// partTxn is one source partition's transaction.
type partTxn struct {
	p       tp
	st      *partState
	records int
	bytes   int64
	next    int64       // the position after this transaction
	last    *kgo.Record // the last copy produced; kgo sets its offset on acknowledgement
	sync    Sync        // the sync point at the transaction's start
	errs    kgo.FirstErrPromise
	cause   error // why it must abort: a produce or flush error
	ended   error // EndTransaction's error
	commit  bool
}

// transact copies pending, and whatever more arrives within the commit
// interval, in one transaction per source partition, each with its
// position. After an abort, left are the records to copy again (those of
// partitions still owned) and cause is why it aborted, nil for a revoke.
// err is set when the loop must stop: a producer fenced while this
// instance believes it owns the partition, or a commit whose outcome is
// unknown.
func (m *Mirror) transact(ctx context.Context, pending []taken) (left []taken, cause, err error) {
	t := &txn{epoch: m.epoch.Load(), parts: make(map[tp]*partTxn)}
	pending = m.stillOwned(pending)
	if len(pending) == 0 {
		return nil, nil, nil
	}
	// Produced with a context that outlives a stop request: a
	// transaction still ends with a commit when it can.
	pctx := context.WithoutCancel(ctx)
	if err := m.produce(pctx, t, pending); err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(m.cfg.commitInterval)
	for len(t.records) < m.cfg.maxRecords && ctx.Err() == nil && m.epoch.Load() == t.epoch {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		if err := m.produce(pctx, t, m.poll(ctx, nil, m.cfg.maxRecords-len(t.records), wait)); err != nil {
			return nil, nil, err
		}
	}
	if m.crashAt("produced") {
		return nil, nil, errCrashed
	}
	for _, pt := range t.parts {
		rec := positionRecord(m.cfg.offsetsTopic, m.offsetsParts, pt.p, pt.next, pt.sync, m.cfg.instance())
		pt.st.prod.Produce(pctx, rec, pt.errs.Promise())
	}
	return m.end(ctx, t)
}

// produce sends records into their partitions' open transactions
// (beginning them as needed): partition p to partition p, key, value,
// headers and timestamp kept.
func (m *Mirror) produce(ctx context.Context, t *txn, ts []taken) error {
	for _, tk := range ts {
		r := tk.r
		p := tp{r.Topic, r.Partition}
		pt := t.parts[p]
		if pt == nil {
			if err := tk.st.prod.BeginTransaction(); err != nil {
				return fmt.Errorf("beginning the transaction of %s: %w", p, err)
			}
			tk.st.open = true
			pt = &partTxn{p: p, st: tk.st, sync: tk.st.sync}
			if tk.st.committed < 0 {
				// No position yet: the partition is copied from its
				// log start, and its first record is where the
				// copies begin.
				pt.sync.Source = r.Offset
			}
			t.parts[p] = pt
		}
		out := &kgo.Record{
			Topic:     m.cfg.targetTopic(r.Topic),
			Partition: r.Partition,
			Key:       r.Key,
			Value:     r.Value,
			Headers:   r.Headers,
			Timestamp: r.Timestamp,
		}
		tk.st.prod.Produce(ctx, out, pt.errs.Promise())
		pt.records++
		pt.next = r.Offset + 1
		pt.last = out
		pt.bytes += int64(len(r.Key) + len(r.Value))
		for _, h := range r.Headers {
			pt.bytes += int64(len(h.Key) + len(h.Value))
		}
	}
	t.records = append(t.records, ts...)
	return nil
}

// end flushes and ends every partition's transaction: a partition commits
// only if all its records were acknowledged and it is still owned.
func (m *Mirror) end(ctx context.Context, t *txn) (left []taken, cause, err error) {
	// Flush first so the produce results are known without waiting out
	// the linger; a failed record must never be skipped. The transaction
	// timeout bounds delivery (kgo's RecordDeliveryTimeout would count
	// from the copied, possibly old, record timestamps).
	m.eachPart(t, func(pt *partTxn) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.txnTimeout)
		defer cancel()
		if pt.cause = pt.st.prod.Flush(fctx); pt.cause == nil {
			pt.cause = pt.errs.Err()
		}
	})
	if m.crashAt("flushed") {
		return nil, nil, errCrashed
	}
	m.commitMu.Lock()
	commits := 0
	for _, pt := range t.parts {
		pt.commit = pt.cause == nil && m.owns(pt.p, pt.st)
		if pt.commit {
			commits++
		}
	}
	if commits > 0 && m.crashAt("committing") {
		m.commitMu.Unlock()
		return nil, nil, errCrashed
	}
	m.eachPart(t, func(pt *partTxn) {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.txnTimeout)
		defer cancel()
		try := kgo.TryCommit
		if !pt.commit {
			try = kgo.TryAbort
			// Records still buffered (a flush that timed out) must
			// fail before the abort.
			if err := pt.st.prod.AbortBufferedRecords(ectx); err != nil {
				m.cfg.logger.Warn("aborting buffered records", "transactional_id", pt.st.txnID, "err", err)
			}
		}
		pt.ended = pt.st.prod.EndTransaction(ectx, try)
		pt.st.open = false
	})
	m.commitMu.Unlock()
	if commits > 0 && m.crashAt("committed") {
		return nil, nil, errCrashed
	}
	var stop []error
	for _, pt := range t.parts {
		owned := m.owns(pt.p, pt.st)
		switch {
		case pt.commit && pt.ended != nil:
			// The commit's outcome is unknown: retrying could copy
			// twice. Stop; a restart rebuilds from the offsets topic.
			stop = append(stop, fmt.Errorf("committing the target transaction of %s: %w", pt.p, pt.ended))
		case pt.commit:
			m.committed(pt)
		case !owned:
			// Revoked: the abort's outcome does not matter, the next
			// owner's initialization ends the transaction anyway.
			m.stats.aborted.Add(1)
		case isFenced(pt.cause) || isFenced(pt.ended):
			// Fenced while this instance believes it owns the
			// partition: another instance took it (this one was
			// expelled from the source group without hearing so yet),
			// or the transaction outlived its timeout.
			m.stats.aborted.Add(1)
			stop = append(stop, fmt.Errorf("target transaction of %s fenced (another instance owns the partition, or the transaction timed out): %w", pt.p, cmp.Or(pt.cause, pt.ended)))
		case pt.ended != nil:
			stop = append(stop, fmt.Errorf("aborting the target transaction of %s: %w", pt.p, pt.ended))
		default:
			m.stats.aborted.Add(1)
			if cause == nil {
				cause = pt.cause
			}
			m.cfg.logger.Info("target transaction aborted", "partition", pt.p.String(), "records", pt.records, "cause", pt.cause)
		}
	}
	if len(stop) > 0 {
		return nil, nil, errors.Join(stop...)
	}
	// The records of aborted, still owned partitions go again.
	keep := t.records[:0:0]
	for _, tk := range t.records {
		if pt := t.parts[tp{tk.r.Topic, tk.r.Partition}]; !pt.commit {
			keep = append(keep, tk)
		}
	}
	return m.stillOwned(keep), cause, nil
}

// eachPart runs fn on every partition transaction of t concurrently.
func (m *Mirror) eachPart(t *txn, fn func(*partTxn)) {
	var wg sync.WaitGroup
	for _, pt := range t.parts {
		wg.Go(func() { fn(pt) })
	}
	wg.Wait()
}

func (m *Mirror) committed(pt *partTxn) {
	m.stats.committed.Add(1)
	m.stats.records.Add(int64(pt.records))
	m.stats.bytes.Add(pt.bytes)
	pt.st.sync = Sync{Source: pt.next, Target: pt.last.Offset + 1}
	m.mu.Lock()
	defer m.mu.Unlock()
	pt.st.committed = pt.next
}

// crashAt is a crash point: a test's in-process hook, and in builds with
// the exactly_crashpoints tag a SIGKILL of the process (points
// "mirror-<point>", see internal/crashpoint).
func (m *Mirror) crashAt(point string) bool {
	crashpoint.Hit("mirror-" + point)
	return m.crash != nil && m.crash(point)
}

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
