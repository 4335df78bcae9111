// Package orderservice is the order service of the services demo: an HTTP
// API that takes orders and saves each one together with its event in one
// database transaction, through the outbox (package outbox), so that "save
// the order" and "publish the order" cannot come apart.
//
// POST /orders takes a JSON order ({"customer_id", "amount_cents", and an
// optional "order_id"}) with an Idempotency-Key header (or, without the
// header, the order id is the key). In one transaction it inserts the order
// into the orders table and writes its event, an orders.Order keyed by
// customer id (the order stream processor's input, examples/orders), into
// the outbox for the orders topic; the relay (`exactly relay`) publishes it.
// A retried request with a key already taken returns the order saved the
// first time (200 and Idempotent-Replayed: true) and writes nothing; a new
// order answers 201. GET /orders/{id} returns a saved order.
package orderservice

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/outbox"
	"github.com/exactly-stream/exactly/sqldb"
)

// Table is the order service's orders table.
const Table = "orders"

// HeaderIdempotencyKey names the request header that makes POST /orders
// idempotent; HeaderReplayed is set on the answer to a retried request.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
)

// maxIDLen bounds order ids, customer ids and idempotency keys: the
// longest indexed VARCHAR MySQL takes in utf8mb4.
const maxIDLen = 191

// Schema returns the CREATE TABLE statement of the orders table for
// dialect d: one row per order, unique by order id and by idempotency key.
// created_at is in Unix milliseconds, the same in every dialect.
func Schema(d sqldb.Dialect) string {
	name, suffix := "VARCHAR(191)", ""
	switch d {
	case sqldb.MySQL:
		suffix = " ENGINE=InnoDB"
	case sqldb.SQLite:
		name = "TEXT"
	}
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  order_id        %s NOT NULL PRIMARY KEY,
  idempotency_key %s NOT NULL UNIQUE,
  customer_id     %s NOT NULL,
  amount_cents    BIGINT NOT NULL,
  created_at_ms   BIGINT NOT NULL
)%s`, Table, name, name, name, suffix)
}

// EnsureSchema creates the orders table and the outbox table (named
// table) when they are missing.
func EnsureSchema(ctx context.Context, db *sql.DB, d sqldb.Dialect, table string) error {
	if _, err := db.ExecContext(ctx, Schema(d)); err != nil {
		return fmt.Errorf("creating the orders table: %w", err)
	}
	s := outbox.Schema(d, table)
	if s == "" {
		return fmt.Errorf("creating the outbox table: %q is not a plain SQL identifier", table)
	}
	if _, err := db.ExecContext(ctx, s); err != nil {
		return fmt.Errorf("creating the outbox table %s: %w", table, err)
	}
	return nil
}

// Opt configures a Service.
type Opt func(*cfg)

type cfg struct {
	topic, table string
	logger       *slog.Logger
	now          func() time.Time
}

// Topic sets the topic the order events go to. The default value is
// orders.TopicOrders.
func Topic(t string) Opt { return func(c *cfg) { c.topic = t } }

// OutboxTable names the outbox table. The default value is
// outbox.DefaultTable.
func OutboxTable(t string) Opt { return func(c *cfg) { c.table = t } }

// WithLogger sets the logger of failed requests. The default discards.
func WithLogger(l *slog.Logger) Opt { return func(c *cfg) { c.logger = l } }

// Service is the order service's HTTP API (an http.Handler). It is safe
// for concurrent requests.
type Service struct {
	db  *sql.DB
	cfg cfg
	out *outbox.Writer
	mux *http.ServeMux
	q   queries
}

// queries are the service's SQL statements in its dialect.
type queries struct {
	insert, byKey, byID string
}

func newQueries(d sqldb.Dialect) queries {
	cols := "order_id, idempotency_key, customer_id, amount_cents, created_at_ms"
	insert := "INSERT INTO " + Table + " (" + cols + ") VALUES (?, ?, ?, ?, ?) "
	if d == sqldb.MySQL {
		insert += "ON DUPLICATE KEY UPDATE order_id = order_id" // 0 rows affected
	} else {
		insert += "ON CONFLICT DO NOTHING"
	}
	sel := "SELECT " + cols + " FROM " + Table + " WHERE "
	return queries{insert: d.Rebind(insert), byKey: d.Rebind(sel + "idempotency_key = ?"), byID: d.Rebind(sel + "order_id = ?")}
}

// New returns the order service on db, a database of dialect d with the
// tables of EnsureSchema.
func New(db *sql.DB, d sqldb.Dialect, opts ...Opt) (*Service, error) {
	c := cfg{topic: orders.TopicOrders, table: outbox.DefaultTable, logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if c.topic == "" {
		return nil, errors.New("orderservice: the topic is empty")
	}
	w, err := outbox.NewWriter(d, c.table)
	if err != nil {
		return nil, fmt.Errorf("orderservice: %w", err)
	}
	s := &Service{db: db, cfg: c, out: w, mux: http.NewServeMux(), q: newQueries(d)}
	s.mux.HandleFunc("POST /orders", s.post)
	s.mux.HandleFunc("GET /orders/{id}", s.get)
	return s, nil
}

// ServeHTTP serves the API.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }
