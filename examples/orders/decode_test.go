package orders

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecodeOrderValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		value string
		want  Order
	}{
		{
			name:  "plain",
			value: `{"order_id":"o-1","customer_id":"c-1","amount_cents":250,"created_at":"2026-01-02T03:04:05Z"}`,
			want:  Order{"o-1", "c-1", 250, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		},
		{
			name:  "unknown fields allowed",
			value: `{"order_id":"o-1","customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02T03:04:05Z","note":"x"}`,
			want:  Order{"o-1", "c-1", 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		},
		{
			name:  "fractional seconds and zone offset",
			value: `{"order_id":"o-1","customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02T03:04:05.123+02:00"}`,
			want:  Order{"o-1", "c-1", 1, time.Date(2026, 1, 2, 1, 4, 5, 123e6, time.UTC)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := DecodeOrder([]byte(tc.value))
			require.NoError(t, err)
			require.NoError(t, o.Validate("c-1"))
			require.Equal(t, tc.want.OrderID, o.OrderID)
			require.Equal(t, tc.want.CustomerID, o.CustomerID)
			require.Equal(t, tc.want.AmountCents, o.AmountCents)
			require.True(t, tc.want.CreatedAt.Equal(o.CreatedAt), "created_at %s, want %s", o.CreatedAt, tc.want.CreatedAt)
		})
	}
}

func TestDecodeOrderMalformed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		key   string
		value string
		err   string // substring of the error
	}{
		{"empty value", "c-1", ``, "decoding order"},
		{"invalid JSON", "c-1", `{"order_id":"o-1",`, "decoding order"},
		{"JSON null", "c-1", `null`, "missing field order_id"},
		{"JSON array", "c-1", `[1]`, "decoding order"},
		{"trailing data", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02T03:04:05Z"} x`, "decoding order"},
		{"order_id not a string", "c-1", `{"order_id":7,"customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02T03:04:05Z"}`, "decoding order"},
		{"order_id null", "c-1", `{"order_id":null,"customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02T03:04:05Z"}`, "missing field order_id"},
		{"missing order_id", "c-1", `{"customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02T03:04:05Z"}`, "missing field order_id"},
		{"missing customer_id", "c-1", `{"order_id":"o-1","amount_cents":1,"created_at":"2026-01-02T03:04:05Z"}`, "missing field customer_id"},
		{"missing amount_cents", "c-1", `{"order_id":"o-1","customer_id":"c-1","created_at":"2026-01-02T03:04:05Z"}`, "missing field amount_cents"},
		{"missing created_at", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":1}`, "missing field created_at"},
		{"amount fractional", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":1.5,"created_at":"2026-01-02T03:04:05Z"}`, "decoding order"},
		{"amount exponent", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":1e3,"created_at":"2026-01-02T03:04:05Z"}`, "decoding order"},
		{"amount string", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":"1","created_at":"2026-01-02T03:04:05Z"}`, "decoding order"},
		{"amount overflows", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":9223372036854775808,"created_at":"2026-01-02T03:04:05Z"}`, "decoding order"},
		{"created_at not RFC 3339", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02 03:04:05"}`, "created_at"},
		{"created_at without zone", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02T03:04:05"}`, "created_at"},
		{"created_at a number", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":1,"created_at":1767323045}`, "decoding order"},
		{"empty order_id", "c-1", `{"order_id":"","customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02T03:04:05Z"}`, "order_id is empty"},
		{"empty customer_id", "c-1", `{"order_id":"o-1","customer_id":"","amount_cents":1,"created_at":"2026-01-02T03:04:05Z"}`, "customer_id is empty"},
		{"key differs", "c-2", `{"order_id":"o-1","customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02T03:04:05Z"}`, "differs from record key"},
		{"null key", "", `{"order_id":"o-1","customer_id":"c-1","amount_cents":1,"created_at":"2026-01-02T03:04:05Z"}`, "differs from record key"},
		{"amount zero", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":0,"created_at":"2026-01-02T03:04:05Z"}`, "not positive"},
		{"amount negative", "c-1", `{"order_id":"o-1","customer_id":"c-1","amount_cents":-5,"created_at":"2026-01-02T03:04:05Z"}`, "not positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := decodeAndValidate(tc.key, []byte(tc.value))
			require.Error(t, err)
			require.ErrorIs(t, err, ErrMalformed)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func decodeAndValidate(key string, value []byte) error {
	o, err := DecodeOrder(value)
	if err != nil {
		return err
	}
	return o.Validate(key)
}

// TestGeneratedMalformedKinds checks that every kind Produce generates is
// rejected, and for the reason intended.
func TestGeneratedMalformedKinds(t *testing.T) {
	t.Parallel()
	o := Order{OrderID: "o-1-1", CustomerID: "c-0001", AmountCents: 1234, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	want := map[malformedKind]string{
		badJSON:          "decoding order",
		emptyOrderID:     "order_id is empty",
		emptyCustomerID:  "customer_id is empty",
		keyMismatch:      "differs from record key",
		zeroAmount:       "not positive",
		negativeAmount:   "not positive",
		fractionalAmount: "decoding order",
		stringAmount:     "decoding order",
		missingCreatedAt: "missing field created_at",
		badCreatedAt:     "created_at",
	}
	require.Len(t, want, int(numMalformedKinds))
	for kind := range numMalformedKinds {
		v, err := malformedValue(kind, o)
		require.NoError(t, err)
		err = decodeAndValidate(o.CustomerID, v)
		require.ErrorIs(t, err, ErrMalformed, "kind %d", kind)
		require.ErrorContains(t, err, want[kind], "kind %d", kind)
	}
}

func TestDecodeEventAndPayment(t *testing.T) {
	t.Parallel()
	ev, err := DecodeEvent([]byte(`{"order_id":"o","customer_id":"c","amount_cents":5,"customer_order_count":2,"customer_total_cents":9}`))
	require.NoError(t, err)
	require.Equal(t, Event{"o", "c", 5, 2, 9}, ev)
	require.NoError(t, ev.Validate("c"))
	require.ErrorIs(t, ev.Validate("d"), ErrMalformed)

	_, err = DecodeEvent([]byte(`{"order_id":"o","customer_id":"c","amount_cents":5,"customer_order_count":2}`))
	require.ErrorContains(t, err, "missing field customer_total_cents")

	p, err := DecodePayment([]byte(`{"order_id":"o","customer_id":"c","amount_cents":5,"attempt":1}`))
	require.NoError(t, err)
	require.Equal(t, Payment{"o", "c", 5, 1}, p)

	_, err = DecodePayment([]byte(`{"order_id":"o","customer_id":"c","amount_cents":5,"attempt":1.0}`))
	require.True(t, errors.Is(err, ErrMalformed))
}

func TestSerdesRoundTrip(t *testing.T) {
	t.Parallel()
	o := Order{"o-1", "c-1", 5, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	b, err := OrderSerde().Encode(o)
	require.NoError(t, err)
	got, err := OrderSerde().Decode(b)
	require.NoError(t, err)
	require.Equal(t, o, got)

	c := Customer{OrderCount: 2, TotalCents: 7}
	b, err = CustomerSerde().Encode(c)
	require.NoError(t, err)
	gotC, err := CustomerSerde().Decode(b)
	require.NoError(t, err)
	require.Equal(t, c, gotC)
}
