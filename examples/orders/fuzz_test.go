package orders

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeOrder: the decoder never panics, and whatever it accepts and
// validates survives a JSON round trip unchanged.
func FuzzDecodeOrder(f *testing.F) {
	f.Add([]byte(`{"order_id":"o-1","customer_id":"c-1","amount_cents":250,"created_at":"2026-01-02T03:04:05Z"}`), "c-1")
	f.Add([]byte(`{"order_id":"","customer_id":"c-1","amount_cents":250,"created_at":"2026-01-02T03:04:05Z"}`), "c-1")
	f.Add([]byte(`{"order_id":"o","customer_id":"c","amount_cents":1.5,"created_at":"x"}`), "c")
	f.Add([]byte(`{"order_id":"o","customer_id":"c","amount_cents":-3}`), "c")
	f.Add([]byte(`not json`), "")
	f.Add([]byte(`null`), "k")
	f.Fuzz(func(t *testing.T, b []byte, key string) {
		o, err := DecodeOrder(b)
		if err != nil || o.Validate(key) != nil {
			return
		}
		require.NotEmpty(t, o.OrderID)
		require.Equal(t, key, o.CustomerID)
		require.Positive(t, o.AmountCents)
		again, err := json.Marshal(o)
		require.NoError(t, err)
		o2, err := DecodeOrder(again)
		require.NoError(t, err)
		require.Equal(t, o.OrderID, o2.OrderID)
		require.Equal(t, o.AmountCents, o2.AmountCents)
		require.True(t, o.CreatedAt.Equal(o2.CreatedAt))
	})
}
