// Package payments is the payment service of the order pipeline rebuilt on
// the transactional database sink (package dbsink): the database twin of
// the stream-processing payment stage in examples/orders.
//
// It consumes the order service's events (orders.TopicEvents, one Event per
// applied order) with read_committed and writes one row per order into its
// own payments table, in the same database transaction as the sink's
// offsets. A malformed event is dead-lettered in that transaction. A row
// counts the times its order was applied (attempts): exactly-once means 1
// everywhere, and an event applied twice shows 2 instead of hiding behind
// an upsert.
package payments

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/dbsink"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/sqldb"
)

// DefaultGroup is the payment service's sink name: its consumer group and
// its rows' key in the sink's tables.
const DefaultGroup = "exactly-payments-db"

// Table is the payments table.
const Table = "payments"

// Schema returns the SQL that creates the payments table in dialect d:
// one row per order, with the event's position (source topic, partition,
// offset) and the times it was applied.
func Schema(d sqldb.Dialect) string {
	text, name, suffix := "TEXT", "VARCHAR(255)", ""
	now := "TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
	switch d {
	case sqldb.Postgres:
		now = "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP"
	case sqldb.MySQL:
		name, suffix = "VARCHAR(191)", " ENGINE=InnoDB"
		now = "TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
	case sqldb.SQLite:
		name = text
	}
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  order_id         %s NOT NULL PRIMARY KEY,
  customer_id      %s NOT NULL,
  amount_cents     BIGINT NOT NULL,
  attempts         INTEGER NOT NULL,
  source_topic     %s NOT NULL,
  source_partition INTEGER NOT NULL,
  source_offset    BIGINT NOT NULL,
  created_at       %s
)%s`, Table, name, name, name, now, suffix)
}

// SchemaSQL is every table the payment service uses in dialect d, the
// sink's included, as one script.
func SchemaSQL(d sqldb.Dialect) string {
	return Schema(d) + ";\n\n" + dbsink.SchemaSQL(d, dbsink.DefaultTables())
}

// EnsureSchema creates the payments table when it is missing (the sink
// creates its own).
func EnsureSchema(ctx context.Context, db *sql.DB, d sqldb.Dialect) error {
	if _, err := db.ExecContext(ctx, Schema(d)); err != nil {
		return fmt.Errorf("creating the payments table: %w", err)
	}
	return nil
}

// Handler returns the sink handler that pays an event: it decodes and
// validates it (a malformed event is dead-lettered) and inserts its
// payment, or counts one more attempt when the order is paid already.
func Handler(d sqldb.Dialect) dbsink.Handler {
	upsert := "INSERT INTO " + Table + " (order_id, customer_id, amount_cents, attempts, source_topic, source_partition, source_offset) VALUES (?, ?, ?, 1, ?, ?, ?) "
	if d == sqldb.MySQL {
		upsert += "ON DUPLICATE KEY UPDATE attempts = attempts + 1"
	} else {
		upsert += "ON CONFLICT (order_id) DO UPDATE SET attempts = " + Table + ".attempts + 1"
	}
	upsert = d.Rebind(upsert)
	return dbsink.HandlerFunc(func(ctx context.Context, tx *sql.Tx, r *kgo.Record) error {
		ev, err := orders.DecodeEvent(r.Value)
		if err == nil {
			err = ev.Validate(string(r.Key))
		}
		if err != nil {
			return dbsink.Malformed(err)
		}
		if _, err := tx.ExecContext(ctx, upsert, ev.OrderID, ev.CustomerID, ev.AmountCents, r.Topic, r.Partition, r.Offset); err != nil {
			return fmt.Errorf("paying order %q: %w", ev.OrderID, err)
		}
		return nil
	})
}

// New returns the payment service: a sink named group (DefaultGroup when
// empty) of ts.Events into db. opts come after the service's own (the
// topic) and may add brokers, client options, an instance ID, a logger.
func New(db *sql.DB, d sqldb.Dialect, group string, ts orders.Topics, opts ...dbsink.Opt) (*dbsink.Sink, error) {
	if group == "" {
		group = DefaultGroup
	}
	return dbsink.New(group, db, d, Handler(d), append([]dbsink.Opt{dbsink.Topics(ts.Events)}, opts...)...)
}

// Payment is a row of the payments table.
type Payment struct {
	OrderID, CustomerID string
	AmountCents         int64
	Attempts            int64
	Topic               string
	Partition           int32
	Offset              int64
}

// Read returns every payment, by order id.
func Read(ctx context.Context, db *sql.DB) (map[string]Payment, error) {
	rows, err := db.QueryContext(ctx, "SELECT order_id, customer_id, amount_cents, attempts, source_topic, source_partition, source_offset FROM "+Table)
	if err != nil {
		return nil, fmt.Errorf("reading payments: %w", err)
	}
	defer rows.Close()
	out := make(map[string]Payment)
	for rows.Next() {
		var p Payment
		if err := rows.Scan(&p.OrderID, &p.CustomerID, &p.AmountCents, &p.Attempts, &p.Topic, &p.Partition, &p.Offset); err != nil {
			return nil, fmt.Errorf("reading payments: %w", err)
		}
		out[p.OrderID] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading payments: %w", err)
	}
	return out, nil
}

// Check compares the payments with the events that should have paid them
// (by order id): every event paid exactly once with its customer and
// amount, no payment without an event. It returns one line per problem.
func Check(paid map[string]Payment, events map[string]orders.Event) []string {
	var out []string
	for id, ev := range events {
		p, ok := paid[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("order %s: no payment", id))
		case p.Attempts != 1:
			out = append(out, fmt.Sprintf("order %s: applied %d times", id, p.Attempts))
		case p.CustomerID != ev.CustomerID || p.AmountCents != ev.AmountCents:
			out = append(out, fmt.Sprintf("order %s: paid %d for %s, want %d for %s", id, p.AmountCents, p.CustomerID, ev.AmountCents, ev.CustomerID))
		}
	}
	for id := range paid {
		if _, ok := events[id]; !ok {
			out = append(out, fmt.Sprintf("order %s: paid without an event", id))
		}
	}
	return out
}

// Summary is one line on a payments table: rows and the sum of amounts.
func Summary(paid map[string]Payment) string {
	var total, dup int64
	for _, p := range paid {
		total += p.AmountCents
		if p.Attempts != 1 {
			dup++
		}
	}
	return fmt.Sprintf("%d payments, %d cents, %d applied more than once", len(paid), total, dup)
}
