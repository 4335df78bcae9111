package dbsink

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/crashpoint"
)

// batch is the records of one poll, per partition, each partition with
// the ownership it was taken under: they may be applied only while that
// very ownership lasts.
type batch struct {
	parts map[tp]*partBatch
}

type partBatch struct {
	st      *partState
	records []*kgo.Record
}

// next is the partition's next offset once its records are applied.
func (pb *partBatch) next() int64 { return pb.records[len(pb.records)-1].Offset + 1 }

func (b *batch) records() int {
	n := 0
	for _, pb := range b.parts {
		n += len(pb.records)
	}
	return n
}

// loop applies batches until ctx is done or an error stops it.
func (s *Sink) loop(ctx context.Context) error {
	for {
		if err := s.fatal(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		b := s.poll(ctx)
		err := s.applyBatch(ctx, b)
		s.cl.AllowRebalance()
		if err != nil {
			return err
		}
	}
}

// poll fetches up to MaxRecords within FetchMaxWait and takes the records
// of owned partitions past what was taken of them already (a fetch
// buffered before a reassignment may repeat records).
func (s *Sink) poll(ctx context.Context) *batch {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.fetchMaxWait)
	defer cancel()
	fs := s.cl.PollRecords(pctx, s.cfg.maxRecords)
	for _, fe := range fs.Errors() {
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded), errors.Is(fe.Err, kgo.ErrClientClosed):
		default:
			s.cfg.logger.Warn("fetch error; kgo retries", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
	}
	b := &batch{parts: make(map[tp]*partBatch)}
	s.mu.Lock()
	defer s.mu.Unlock()
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		st := s.mu.owned[tp{p.Topic, p.Partition}]
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
			pb := b.parts[tp{p.Topic, p.Partition}]
			if pb == nil {
				pb = &partBatch{st: st}
				b.parts[tp{p.Topic, p.Partition}] = pb
			}
			pb.records = append(pb.records, r)
		}
	})
	return b
}

// position names a record.
type position struct {
	tp
	offset int64
}

// errLost says that partitions were taken by another member: their owner
// epoch moved.
type errLost struct{ parts map[tp]*partState }

func (e *errLost) Error() string {
	return fmt.Sprintf("dbsink: %d partitions taken by another member", len(e.parts))
}

// errBadRecord is a record its handler rejected as malformed.
type errBadRecord struct {
	pos position
	err error
}

func (e *errBadRecord) Error() string { return e.err.Error() }

// errCommit is a failed COMMIT: its outcome is unknown.
type errCommit struct{ err error }

func (e *errCommit) Error() string { return "committing the batch: " + e.err.Error() }

func (e *errCommit) Unwrap() error { return e.err }

// applyBatch applies b in one database transaction, trying again after a
// rollback: at once for a malformed record (the next try dead-letters it)
// or a lost partition (the next try leaves it out), after a backoff for
// any other error, MaxFailures times at most. A failed COMMIT stops the
// sink: its outcome is unknown, and only a new claim (a restart) reads
// what the database holds.
func (s *Sink) applyBatch(ctx context.Context, b *batch) error {
	bad := make(map[position]error)
	failures := 0
	for {
		if b.records() == 0 {
			return nil
		}
		if s.beforeTxn != nil {
			s.beforeTxn()
		}
		// The transaction outlives a stop request: a batch begun is
		// applied when it can be.
		err := s.transact(context.WithoutCancel(ctx), b, bad)
		var lost *errLost
		var malformed *errBadRecord
		var commit *errCommit
		switch {
		case err == nil:
			s.committed(b, len(bad))
			return nil
		case errors.As(err, &malformed):
			bad[malformed.pos] = malformed.err
		case errors.As(err, &lost):
			s.stats.rollbacks.Add(1)
			s.forget(lost.parts)
			for p := range lost.parts {
				delete(b.parts, p)
			}
			s.cfg.logger.Warn("partitions taken by another member: their batch rolled back", "partitions", slices.Collect(maps.Keys(lost.parts)))
		case errors.As(err, &commit):
			s.stats.rollbacks.Add(1)
			return fmt.Errorf("dbsink: %w (its outcome is unknown; a restart claims the partitions and resumes from what the database holds)", err)
		default:
			s.stats.rollbacks.Add(1)
			failures++
			if failures >= s.cfg.maxFailures {
				return fmt.Errorf("dbsink: %d transactions of a batch in a row failed: %w", failures, err)
			}
			s.cfg.logger.Warn("batch rolled back; retrying", "failures", failures, "err", err)
			if !sleep(ctx, backoff(failures)) {
				return nil
			}
		}
	}
}

// transact applies b in one transaction: first the fence (each
// partition's offset advances only while its epoch is this member's, and
// the row stays locked until the end), then every record through the
// handler or, for the positions in bad, into the dead-letter table.
func (s *Sink) transact(ctx context.Context, b *batch, bad map[position]error) error {
	tx, err := s.cfg.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	defer tx.Rollback()
	if err := s.idle.Apply(ctx, tx); err != nil {
		return err
	}
	parts := slices.SortedFunc(maps.Keys(b.parts), compareTP)
	lost := make(map[tp]*partState)
	for _, p := range parts {
		pb := b.parts[p]
		ok, err := s.advance(ctx, tx, p, pb.st.epoch, pb.next())
		if err != nil {
			return err
		}
		if !ok {
			lost[p] = pb.st
		}
	}
	if len(lost) > 0 {
		return &errLost{lost}
	}
	for _, p := range parts {
		for _, r := range b.parts[p].records {
			pos := position{p, r.Offset}
			if cause, ok := bad[pos]; ok {
				if _, err := tx.ExecContext(ctx, s.sql.deadLetter, s.cfg.name, p.topic, p.part, r.Offset, r.Key, r.Value, cause.Error()); err != nil {
					return fmt.Errorf("dead-lettering %s@%d: %w", p, r.Offset, err)
				}
				continue
			}
			if err := s.cfg.handler.Apply(ctx, tx, r); err != nil {
				if IsMalformed(err) {
					return &errBadRecord{pos, err}
				}
				return &ApplyError{Topic: p.topic, Partition: p.part, Offset: r.Offset, Err: err}
			}
		}
	}
	crashpoint.Hit(crashpoint.SinkApplied)
	if err := tx.Commit(); err != nil {
		return &errCommit{err}
	}
	crashpoint.Hit(crashpoint.SinkCommitted)
	return nil
}

// committed records that b's transaction committed.
func (s *Sink) committed(b *batch, deadLettered int) {
	s.stats.batches.Add(1)
	s.stats.records.Add(int64(b.records() - deadLettered))
	s.stats.deadLettered.Add(int64(deadLettered))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pb := range b.parts {
		pb.st.committed = pb.next()
	}
}
