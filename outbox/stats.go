package outbox

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type stats struct {
	rows, bytes, batches, aborted atomic.Int64
	oldest                        atomic.Int64 // unix nanoseconds of the oldest row last read, 0: none
}

func (s *stats) committed(rows []row, recs []*kgo.Record) {
	var b int64
	for _, rec := range recs {
		b += int64(len(rec.Key) + len(rec.Value))
		for _, h := range rec.Headers {
			b += int64(len(h.Key) + len(h.Value))
		}
	}
	s.rows.Add(int64(len(rows)))
	s.bytes.Add(b)
	s.batches.Add(1)
}

func (s *stats) setOldest(t time.Time) {
	if t.IsZero() {
		s.oldest.Store(0)
		return
	}
	s.oldest.Store(t.UnixNano())
}

// Stats is a snapshot of a relay's counters.
type Stats struct {
	RowsRelayed  int64 // rows published in committed transactions
	BytesRelayed int64 // their keys, values and headers, in bytes
	Batches      int64 // Kafka transactions committed: one per batch
	TxnsAborted  int64 // Kafka transactions aborted or failed to commit
	// Lag is the age of the oldest row of the last read (by its
	// created_at, on the database's clock), 0 when that read found the
	// table empty. It grows while the relay is stuck.
	Lag time.Duration
}

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	s := Stats{
		RowsRelayed:  r.stats.rows.Load(),
		BytesRelayed: r.stats.bytes.Load(),
		Batches:      r.stats.batches.Load(),
		TxnsAborted:  r.stats.aborted.Load(),
	}
	if o := r.stats.oldest.Load(); o != 0 {
		s.Lag = max(time.Since(time.Unix(0, o)), 0)
	}
	return s
}

// timeLayouts are the text forms of created_at that drivers return
// unparsed (SQLite stores text).
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05",
	time.RFC3339Nano,
}

// parseTime returns a created_at value as a time (UTC when it names no
// zone), the zero time when it cannot.
func parseTime(v any) time.Time {
	var s string
	switch v := v.(type) {
	case time.Time:
		return v
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return time.Time{}
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
