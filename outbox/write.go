package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/exactly-stream/exactly/sqldb"
)

// Message is one event to publish: a row of the outbox table.
type Message struct {
	Topic   string
	Key     []byte // nil: no key (the producer's partitioner spreads such records)
	Value   []byte
	Headers []Header
}

// Header is a Kafka record header. Values are text (UTF-8): the headers
// column holds them as JSON.
type Header struct {
	Key, Value string
}

// HeaderID is the header every relayed record carries: the outbox row id,
// in decimal, for consumers that want to check.
const HeaderID = "exactly.outbox.id"

// Writer writes outbox rows into one table of one dialect.
type Writer struct {
	q queries
}

// NewWriter returns a writer of the outbox table named table (use
// DefaultTable) in a database of dialect d.
func NewWriter(d sqldb.Dialect, table string) (*Writer, error) {
	if err := checkTable(table); err != nil {
		return nil, err
	}
	if d.DriverName() == "" {
		return nil, configErr("unknown dialect %v", d)
	}
	return &Writer{q: newQueries(d, table)}, nil
}

// Write inserts msgs into the outbox inside the caller's transaction tx:
// they are published if and only if tx commits. On PostgreSQL it also
// notifies the relay (pg_notify, delivered at commit), so it wakes without
// polling. Messages of one key are published in commit order only if the
// writers of that key serialize (see the README): two transactions writing
// one key concurrently may commit out of id order.
func (w *Writer) Write(ctx context.Context, tx *sql.Tx, msgs ...Message) error {
	for _, m := range msgs {
		if m.Topic == "" {
			return fmt.Errorf("outbox: writing a message: the topic is empty")
		}
		headers, err := encodeHeaders(m.Headers)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, w.q.insert, m.Topic, m.Key, m.Value, headers); err != nil {
			return fmt.Errorf("outbox: inserting into %s: %w", w.q.table, err)
		}
	}
	if w.q.d == sqldb.Postgres && len(msgs) > 0 {
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify($1, '')", notifyChannel(w.q.table)); err != nil {
			return fmt.Errorf("outbox: notifying the relay: %w", err)
		}
	}
	return nil
}

// encodeHeaders returns the headers column's value: NULL for none.
func encodeHeaders(hs []Header) (any, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	pairs := make([][2]string, len(hs))
	for i, h := range hs {
		if !utf8.ValidString(h.Key) || !utf8.ValidString(h.Value) {
			return nil, fmt.Errorf("outbox: header %q: keys and values must be UTF-8 text", h.Key)
		}
		pairs[i] = [2]string{h.Key, h.Value}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return nil, fmt.Errorf("outbox: encoding headers: %w", err)
	}
	return string(b), nil
}

// decodeHeaders parses a headers column: empty is none.
func decodeHeaders(s string) ([]Header, error) {
	if s == "" {
		return nil, nil
	}
	var pairs [][]string
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, fmt.Errorf("headers are not a JSON array of [name, value] string pairs: %w", err)
	}
	hs := make([]Header, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("header %d is not a [name, value] pair: %q", i, p)
		}
		hs[i] = Header{p[0], p[1]}
	}
	return hs, nil
}
