package orderservice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/examples/orderservice"
	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/outbox"
)

func newService(t *testing.T, db *dbtest.DB) http.Handler {
	ctx := context.Background()
	require.NoError(t, orderservice.EnsureSchema(ctx, db.DB, db.Dialect, outbox.DefaultTable))
	s, err := orderservice.New(db.DB, db.Dialect, orderservice.Topic("t-orders"))
	require.NoError(t, err)
	return s
}

func post(t *testing.T, h http.Handler, key, body string) (*httptest.ResponseRecorder, orders.Order) {
	req := httptest.NewRequest(http.MethodPost, "/orders", bytes.NewBufferString(body))
	if key != "" {
		req.Header.Set(orderservice.HeaderIdempotencyKey, key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var o orders.Order
	if rec.Code < 300 {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &o))
	}
	return rec, o
}

func count(t *testing.T, db *dbtest.DB, table string) int {
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+table).Scan(&n))
	return n
}

// A retried request (same key) returns the first answer's order and
// writes nothing: one order row and one outbox row per key.
func TestPostIdempotent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		h := newService(t, db)
		rec, first := post(t, h, "k1", `{"customer_id":"c1","amount_cents":250}`)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		require.NotEmpty(t, first.OrderID)
		rec, again := post(t, h, "k1", `{"customer_id":"c1","amount_cents":250}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "true", rec.Header().Get(orderservice.HeaderReplayed))
		require.Equal(t, first.OrderID, again.OrderID)
		require.True(t, first.CreatedAt.Equal(again.CreatedAt))
		require.Equal(t, 1, count(t, db, orderservice.Table))
		require.Equal(t, 1, count(t, db, outbox.DefaultTable))

		var id int64
		var topic string
		var key, value []byte
		var headers, created any
		require.NoError(t, db.QueryRow("SELECT * FROM outbox").Scan(&id, &topic, &key, &value, &headers, &created))
		o, err := orders.DecodeOrder(value)
		require.NoError(t, err, "the event is in the stream processor's wire format")
		require.NoError(t, o.Validate(string(key)))
		require.Equal(t, "t-orders", topic)
		require.Equal(t, first.OrderID, o.OrderID)
	})
}

// Concurrent requests with one key save one order, and every one of them
// answers it.
func TestPostConcurrentSameKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		h := newService(t, db)
		var wg sync.WaitGroup
		ids := make([]string, 8)
		for i := range ids {
			wg.Go(func() {
				rec, o := post(t, h, "same", `{"customer_id":"c1","amount_cents":7}`)
				if rec.Code < 300 {
					ids[i] = o.OrderID
				}
			})
		}
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, ids[0], id)
		}
		require.Equal(t, 1, count(t, db, orderservice.Table))
		require.Equal(t, 1, count(t, db, outbox.DefaultTable))
	})
}

func TestPostRefusals(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		h := newService(t, db)
		for _, c := range []struct {
			name, key, body string
			status          int
		}{
			{"no key", "", `{"customer_id":"c1","amount_cents":1}`, http.StatusBadRequest},
			{"no customer", "k", `{"amount_cents":1}`, http.StatusBadRequest},
			{"zero amount", "k", `{"customer_id":"c1","amount_cents":0}`, http.StatusBadRequest},
			{"not json", "k", `{`, http.StatusBadRequest},
			{"order id key", "", `{"order_id":"o1","customer_id":"c1","amount_cents":1}`, http.StatusCreated},
			{"key reused", "o1", `{"customer_id":"c1","amount_cents":2}`, http.StatusConflict},
			{"order id taken", "other", `{"order_id":"o1","customer_id":"c1","amount_cents":1}`, http.StatusConflict},
		} {
			rec, _ := post(t, h, c.key, c.body)
			require.Equal(t, c.status, rec.Code, "%s: %s", c.name, rec.Body.String())
		}
		require.Equal(t, 1, count(t, db, orderservice.Table))
		require.Equal(t, 1, count(t, db, outbox.DefaultTable))

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orders/o1", nil))
		require.Equal(t, http.StatusOK, rec.Code)
		require.Contains(t, rec.Body.String(), `"customer_id":"c1"`)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orders/none", nil))
		require.Equal(t, http.StatusNotFound, rec.Code)
	})
}
