package orderservice

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/outbox"
)

// Request is the body of POST /orders. OrderID is optional: without it the
// service makes one.
type Request struct {
	OrderID     string `json:"order_id,omitempty"`
	CustomerID  string `json:"customer_id"`
	AmountCents int64  `json:"amount_cents"`
}

// Errors of Create. ErrInvalid marks a request the service refuses (400);
// ErrConflict a key or order id already taken by another order (409).
var (
	ErrInvalid  = errors.New("orderservice: invalid order")
	ErrConflict = errors.New("orderservice: conflict")
)

// validate checks a request and its idempotency key.
func (r Request) validate(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: an %s header or an order_id is required", ErrInvalid, HeaderIdempotencyKey)
	case r.CustomerID == "":
		return fmt.Errorf("%w: customer_id is empty", ErrInvalid)
	case r.AmountCents <= 0:
		return fmt.Errorf("%w: amount_cents %d is not positive", ErrInvalid, r.AmountCents)
	case len(key) > maxIDLen || len(r.OrderID) > maxIDLen || len(r.CustomerID) > maxIDLen:
		return fmt.Errorf("%w: ids and keys are at most %d bytes", ErrInvalid, maxIDLen)
	}
	return nil
}

// matches says whether o is the order req (sent with key) asked for.
func (r Request) matches(o orders.Order) bool {
	return o.CustomerID == r.CustomerID && o.AmountCents == r.AmountCents && (r.OrderID == "" || r.OrderID == o.OrderID)
}

// Create saves the order req under the idempotency key, with its event in
// the outbox, in one transaction. When key was used before it writes
// nothing and returns the order saved then, with replayed true (or
// ErrConflict when req differs from it).
func (s *Service) Create(ctx context.Context, key string, req Request) (o orders.Order, replayed bool, err error) {
	if err := req.validate(key); err != nil {
		return orders.Order{}, false, err
	}
	o = orders.Order{OrderID: req.OrderID, CustomerID: req.CustomerID, AmountCents: req.AmountCents,
		CreatedAt: s.cfg.now().UTC().Truncate(time.Millisecond)}
	if o.OrderID == "" {
		o.OrderID = newOrderID()
	}
	inserted, err := s.insert(ctx, key, o)
	if err != nil || inserted {
		return o, false, err
	}
	prev, found, err := s.lookup(ctx, s.q.byKey, key)
	switch {
	case err != nil:
		return orders.Order{}, false, err
	case !found:
		return orders.Order{}, false, fmt.Errorf("%w: order id %q is taken by another idempotency key", ErrConflict, o.OrderID)
	case !req.matches(prev):
		return orders.Order{}, false, fmt.Errorf("%w: idempotency key %q was used for another order (%s)", ErrConflict, key, prev.OrderID)
	}
	return prev, true, nil
}

// insert inserts o and its outbox row in one transaction, or nothing when
// its key or id is taken (inserted false).
func (s *Service) insert(ctx context.Context, key string, o orders.Order) (inserted bool, err error) {
	value, err := json.Marshal(o)
	if err != nil {
		return false, fmt.Errorf("encoding order %q: %w", o.OrderID, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("beginning a transaction: %w", err)
	}
	defer func() {
		if !inserted || err != nil {
			_ = tx.Rollback()
		}
	}()
	res, err := tx.ExecContext(ctx, s.q.insert, o.OrderID, key, o.CustomerID, o.AmountCents, o.CreatedAt.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("inserting order %q: %w", o.OrderID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	msg := outbox.Message{Topic: s.cfg.topic, Key: []byte(o.CustomerID), Value: value}
	if err := s.out.Write(ctx, tx, msg); err != nil {
		return false, fmt.Errorf("writing the event of order %q: %w", o.OrderID, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("committing order %q: %w", o.OrderID, err)
	}
	return true, nil
}

// Get returns the order with id.
func (s *Service) Get(ctx context.Context, id string) (orders.Order, bool, error) {
	return s.lookup(ctx, s.q.byID, id)
}

func (s *Service) lookup(ctx context.Context, query, arg string) (orders.Order, bool, error) {
	var o orders.Order
	var key string
	var ms int64
	err := s.db.QueryRowContext(ctx, query, arg).Scan(&o.OrderID, &key, &o.CustomerID, &o.AmountCents, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return orders.Order{}, false, nil
	}
	if err != nil {
		return orders.Order{}, false, fmt.Errorf("reading order %q: %w", arg, err)
	}
	o.CreatedAt = time.UnixMilli(ms).UTC()
	return o, true, nil
}

func newOrderID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "o-" + hex.EncodeToString(b[:])
}

// maxBody bounds a request body.
const maxBody = 64 << 10

func (s *Service) post(w http.ResponseWriter, r *http.Request) {
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&req); err != nil {
		http.Error(w, fmt.Sprintf("decoding the order: %v", err), http.StatusBadRequest)
		return
	}
	key := r.Header.Get(HeaderIdempotencyKey)
	if key == "" {
		key = req.OrderID
	}
	o, replayed, err := s.Create(r.Context(), key, req)
	switch {
	case errors.Is(err, ErrInvalid):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case errors.Is(err, ErrConflict):
		http.Error(w, err.Error(), http.StatusConflict)
		return
	case err != nil && r.Context().Err() != nil:
		s.cfg.logger.Debug("creating an order: the client went away", "key", key, "err", err)
		http.Error(w, "the request was canceled", http.StatusServiceUnavailable)
		return
	case err != nil:
		s.cfg.logger.Warn("creating an order", "key", key, "err", err)
		http.Error(w, "saving the order failed; retry with the same "+HeaderIdempotencyKey, http.StatusServiceUnavailable)
		return
	}
	status := http.StatusCreated
	if replayed {
		status = http.StatusOK
		w.Header().Set(HeaderReplayed, "true")
	}
	writeJSON(w, status, o)
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	o, found, err := s.Get(r.Context(), r.PathValue("id"))
	switch {
	case err != nil:
		s.cfg.logger.Warn("reading an order", "id", r.PathValue("id"), "err", err)
		http.Error(w, "reading the order failed", http.StatusServiceUnavailable)
	case !found:
		http.Error(w, "no such order", http.StatusNotFound)
	default:
		writeJSON(w, http.StatusOK, o)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Saved is a row of the orders table.
type Saved struct {
	orders.Order
	IdempotencyKey string
}

// Read returns every saved order, by order id.
func Read(ctx context.Context, db *sql.DB) (map[string]Saved, error) {
	rows, err := db.QueryContext(ctx, "SELECT order_id, idempotency_key, customer_id, amount_cents, created_at_ms FROM "+Table)
	if err != nil {
		return nil, fmt.Errorf("reading orders: %w", err)
	}
	defer rows.Close()
	out := make(map[string]Saved)
	for rows.Next() {
		var s Saved
		var ms int64
		if err := rows.Scan(&s.OrderID, &s.IdempotencyKey, &s.CustomerID, &s.AmountCents, &ms); err != nil {
			return nil, fmt.Errorf("reading orders: %w", err)
		}
		s.CreatedAt = time.UnixMilli(ms).UTC()
		out[s.OrderID] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading orders: %w", err)
	}
	return out, nil
}
