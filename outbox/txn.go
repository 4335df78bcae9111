package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/crashpoint"
)

// row is an outbox row as read.
type row struct {
	id         int64
	topic      string
	key, value []byte
	headers    string
	created    time.Time
}

// batch relays one batch: read, produce in one transaction with the
// progress record, commit, delete. It returns the number of rows read.
// On an error nothing of the batch is published unless its transaction
// committed (and then the next session's recovery deletes its rows).
func (r *Relay) batch(ctx context.Context, prod *kgo.Client) (int, error) {
	rows, err := r.read(ctx)
	if err != nil {
		return 0, err
	}
	r.hit(crashpoint.RelayRead)
	if len(rows) == 0 {
		return 0, nil
	}
	n := len(rows)
	recs, rowErr := r.records(ctx, rows)
	if len(recs) == 0 {
		return n, rowErr
	}
	rows = rows[:len(recs)]
	ids := make([]int64, len(rows))
	for i, rw := range rows {
		ids[i] = rw.id
	}
	err = r.publish(ctx, prod, recs, ids)
	var tooLarge *RowError
	if errors.As(err, &tooLarge) {
		// The broker refused a row: publish the rows before it, then
		// stop on it.
		i := slices.Index(ids, tooLarge.ID)
		if i <= 0 {
			return n, err
		}
		rows, recs, ids, rowErr = rows[:i], recs[:i], ids[:i], err
		err = r.publish(ctx, prod, stripped(recs), ids)
	}
	if err != nil {
		return n, err
	}
	r.hit(crashpoint.RelayCommitted)
	r.stats.committed(rows, recs)
	for _, id := range ids {
		r.last = max(r.last, id)
	}
	if err := r.deleteRows(ctx, ranges(ids)); err != nil {
		return n, err
	}
	return n, rowErr
}

// read returns up to a batch of rows in id order, and records the age of
// the oldest.
func (r *Relay) read(ctx context.Context) ([]row, error) {
	var res *sql.Rows
	var err error
	if r.cfg.highWater {
		res, err = r.db.QueryContext(ctx, r.q.selectAfter, r.last, r.cfg.batchSize)
	} else {
		res, err = r.db.QueryContext(ctx, r.q.selectBatch, r.cfg.batchSize)
	}
	if err != nil {
		return nil, fmt.Errorf("reading outbox rows from %s: %w", r.cfg.table, err)
	}
	defer res.Close()
	var rows []row
	var oldest time.Time
	for res.Next() {
		var rw row
		var headers *string
		var created any
		if err := res.Scan(&rw.id, &rw.topic, &rw.key, &rw.value, &headers, &created); err != nil {
			return nil, fmt.Errorf("reading outbox rows from %s: %w", r.cfg.table, err)
		}
		if headers != nil {
			rw.headers = *headers
		}
		rw.created = parseTime(created)
		if !rw.created.IsZero() && (oldest.IsZero() || rw.created.Before(oldest)) {
			oldest = rw.created
		}
		rows = append(rows, rw)
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("reading outbox rows from %s: %w", r.cfg.table, err)
	}
	r.stats.setOldest(oldest)
	return rows, nil
}

// records turns rows into Kafka records, stopping at the first row that
// cannot be published: its RowError is returned with the records of the
// rows before it.
func (r *Relay) records(ctx context.Context, rows []row) ([]*kgo.Record, error) {
	if err := r.checkTopics(ctx, rows); err != nil {
		return nil, err
	}
	recs := make([]*kgo.Record, 0, len(rows))
	for _, rw := range rows {
		if !r.known[rw.topic] {
			return recs, &RowError{ID: rw.id, Topic: rw.topic, Err: errUnknownTopic}
		}
		hs, err := decodeHeaders(rw.headers)
		if err != nil {
			return recs, &RowError{ID: rw.id, Topic: rw.topic, Err: err}
		}
		rec := &kgo.Record{Topic: rw.topic, Key: rw.key, Value: rw.value}
		for _, h := range hs {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
		}
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderID, Value: strconv.AppendInt(nil, rw.id, 10)})
		recs = append(recs, rec)
	}
	return recs, nil
}

// checkTopics looks up the topics of rows not known yet; a topic found
// missing stays unknown.
func (r *Relay) checkTopics(ctx context.Context, rows []row) error {
	var todo []string
	seen := make(map[string]bool)
	for _, rw := range rows {
		if !r.known[rw.topic] && !seen[rw.topic] {
			seen[rw.topic] = true
			todo = append(todo, rw.topic)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	ds, err := r.adm.ListTopics(ctx, todo...)
	if err != nil {
		return fmt.Errorf("looking up the outbox rows' topics: %w", err)
	}
	for _, t := range todo {
		d, ok := ds[t]
		switch {
		case ok && d.Err == nil:
			r.known[t] = true
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) || errors.Is(d.Err, kerr.InvalidTopicException) ||
			errors.Is(d.Err, kerr.TopicAuthorizationFailed):
			// Stays unknown: records() stops at its first row.
		default:
			return fmt.Errorf("looking up topic %s: %w", t, d.Err)
		}
	}
	return nil
}

// publish produces recs and the progress record of ids in one
// transaction and commits it. Any failure aborts the transaction: a
// failed record is never skipped.
func (r *Relay) publish(ctx context.Context, prod *kgo.Client, recs []*kgo.Record, ids []int64) error {
	if err := prod.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	var mu sync.Mutex
	var first error
	var firstRec *kgo.Record
	promise := func(rec *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if first == nil {
				first, firstRec = err, rec
			}
			mu.Unlock()
		}
	}
	half := (len(recs) + 1) / 2
	for i, rec := range recs {
		prod.Produce(ctx, rec, promise)
		if i+1 == half {
			r.hit(crashpoint.RelayProduced) // half produced, nothing flushed
		}
	}
	prod.Produce(ctx, r.cfg.progressRecord(ids), promise)
	err := prod.Flush(ctx)
	mu.Lock()
	err = errors.Join(err, first)
	mu.Unlock()
	if err != nil {
		r.abort(prod)
		if id, ok := recordTooLarge(firstRec, first); ok {
			return &RowError{ID: id, Topic: firstRec.Topic, Err: first}
		}
		return fenced(fmt.Errorf("producing a batch of %d rows: %w", len(recs), err))
	}
	r.hit(crashpoint.RelayFlushed)
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		r.stats.aborted.Add(1)
		return fenced(fmt.Errorf("committing a batch of %d rows: %w", len(recs), err))
	}
	return nil
}

// recordTooLarge reports a record the broker refuses whatever the retry:
// the row it came from is malformed.
func recordTooLarge(rec *kgo.Record, err error) (int64, bool) {
	if rec == nil || !(errors.Is(err, kerr.MessageTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.RecordListTooLarge)) {
		return 0, false
	}
	for _, h := range rec.Headers {
		if h.Key == HeaderID {
			id, perr := strconv.ParseInt(string(h.Value), 10, 64)
			return id, perr == nil
		}
	}
	return 0, false
}

// abort aborts the open transaction; a failure leaves it to the next
// session's initialization, which ends it.
func (r *Relay) abort(prod *kgo.Client) {
	r.stats.aborted.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.txnTimeout)
	defer cancel()
	if err := prod.AbortBufferedRecords(ctx); err != nil {
		r.cfg.logger.Debug("outbox relay: dropping buffered records", "err", err)
	}
	if err := prod.EndTransaction(ctx, kgo.TryAbort); err != nil {
		r.cfg.logger.Debug("outbox relay: aborting a transaction", "err", err)
	}
}

// deleteRows deletes the rows of rs in one database transaction.
// Deleting a row that is gone already is no error: recovery repeats the
// delete of the last committed batch.
func (r *Relay) deleteRows(ctx context.Context, rs []idRange) error {
	if len(rs) == 0 {
		return nil
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deleting relayed rows: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := r.idle.Apply(ctx, tx); err != nil {
		return fmt.Errorf("deleting relayed rows: %w", err)
	}
	stmt := r.q.deleteRange()
	for _, rg := range rs {
		if _, err := tx.ExecContext(ctx, stmt, rg.lo, rg.hi); err != nil {
			return fmt.Errorf("deleting relayed rows %d-%d: %w", rg.lo, rg.hi, err)
		}
	}
	r.hit(crashpoint.RelayDeleting)
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("deleting relayed rows: committing: %w", err)
	}
	return nil
}

// stripped returns recs ready to be produced again: kgo sets fields of a
// produced record (partition, offset, producer ID) that must not carry
// over into a new transaction.
func stripped(recs []*kgo.Record) []*kgo.Record {
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		out[i] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
	}
	return out
}
