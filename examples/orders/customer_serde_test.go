package orders

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireLikeJSON checks that CustomerSerde decodes b as json.Unmarshal
// does: the same value, or an error for both.
func requireLikeJSON(t *testing.T, b []byte) {
	t.Helper()
	var want Customer
	wantErr := json.Unmarshal(b, &want)
	got, err := CustomerSerde().Decode(b)
	if wantErr != nil {
		require.Error(t, err, "%q", b)
		return
	}
	require.NoError(t, err, "%q", b)
	require.Equal(t, want, got, "%q", b)
}

func TestCustomerSerde(t *testing.T) {
	t.Parallel()
	for _, c := range []Customer{{}, {1, 5}, {200, 999_999}, {-1, -7}, {math.MaxInt64, math.MinInt64}} {
		b, err := CustomerSerde().Encode(c)
		require.NoError(t, err)
		want, err := json.Marshal(c)
		require.NoError(t, err)
		require.Equal(t, string(want), string(b), "the bytes encoding/json writes")
		got, err := CustomerSerde().Decode(b)
		require.NoError(t, err)
		require.Equal(t, c, got)
		_, ok := parseCustomer(b)
		require.True(t, ok, "%s takes the fast path", b)
	}
	for name, in := range map[string]string{
		"spaces":            `{ "order_count": 2, "total_cents": 7 }`,
		"field order":       `{"total_cents":7,"order_count":2}`,
		"before the split":  `{"order_count":2,"total_cents":7,"order_ids":["o-1","o-2"]}`,
		"one field":         `{"order_count":2}`,
		"empty":             `{}`,
		"minus zero":        `{"order_count":-0,"total_cents":7}`,
		"min int64":         `{"order_count":-9223372036854775808,"total_cents":0}`,
		"past max int64":    `{"order_count":9223372036854775808,"total_cents":0}`,
		"past min int64":    `{"order_count":-9223372036854775809,"total_cents":0}`,
		"twenty digits":     `{"order_count":10000000000000000000,"total_cents":0}`,
		"leading zero":      `{"order_count":02,"total_cents":7}`,
		"fraction":          `{"order_count":2.0,"total_cents":7}`,
		"exponent":          `{"order_count":2e1,"total_cents":7}`,
		"plus sign":         `{"order_count":+2,"total_cents":7}`,
		"lone minus":        `{"order_count":-,"total_cents":7}`,
		"string":            `{"order_count":"2","total_cents":7}`,
		"trailing garbage":  `{"order_count":2,"total_cents":7}x`,
		"trailing space":    `{"order_count":2,"total_cents":7} `,
		"truncated":         `{"order_count":2,"total_cents":7`,
		"not JSON":          `order_count=2`,
		"null":              `null`,
		"nothing":           ``,
		"duplicate field":   `{"order_count":2,"total_cents":7,"order_count":3}`,
		"upper-case field":  `{"ORDER_COUNT":2,"total_cents":7}`,
		"null field":        `{"order_count":null,"total_cents":7}`,
		"negative fraction": `{"order_count":-2.5,"total_cents":7}`,
	} {
		t.Run(name, func(t *testing.T) { requireLikeJSON(t, []byte(in)) })
	}
}

// FuzzCustomerSerde: decoding accepts and returns exactly what
// json.Unmarshal does, and encoding writes what json.Marshal writes and
// decodes back to the same customer.
func FuzzCustomerSerde(f *testing.F) {
	f.Add([]byte(`{"order_count":2,"total_cents":7}`), int64(2), int64(7))
	f.Add([]byte(`{"order_count":-9223372036854775808,"total_cents":9223372036854775807}`), int64(math.MinInt64), int64(math.MaxInt64))
	f.Add([]byte(`{"order_count":02,"total_cents":7}`), int64(0), int64(-1))
	f.Add([]byte(`{"order_count":2,"total_cents":7,"order_ids":["o-1"]}`), int64(1), int64(1))
	f.Add([]byte(`{"order_count":1e2,"total_cents":7}`), int64(100), int64(7))
	f.Fuzz(func(t *testing.T, b []byte, count, total int64) {
		requireLikeJSON(t, b)

		c := Customer{OrderCount: count, TotalCents: total}
		enc, err := CustomerSerde().Encode(c)
		require.NoError(t, err)
		want, err := json.Marshal(c)
		require.NoError(t, err)
		require.Equal(t, string(want), string(enc))
		got, err := CustomerSerde().Decode(enc)
		require.NoError(t, err)
		require.Equal(t, c, got)
	})
}
