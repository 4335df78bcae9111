package orders

import (
	"encoding/json"
	"time"
)

// DecodeOrder decodes a TopicOrders value strictly: one JSON object with
// order_id and customer_id strings, an integer amount_cents and an RFC 3339
// created_at, all present and non-null. Unknown fields are allowed. It does
// not check the values; see Order.Validate. Errors wrap ErrMalformed.
func DecodeOrder(b []byte) (Order, error) {
	var w struct {
		OrderID     *string `json:"order_id"`
		CustomerID  *string `json:"customer_id"`
		AmountCents *int64  `json:"amount_cents"`
		CreatedAt   *string `json:"created_at"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Order{}, malformedf("decoding order: %w", err)
	}
	if err := requireFields("order",
		field{"order_id", w.OrderID != nil},
		field{"customer_id", w.CustomerID != nil},
		field{"amount_cents", w.AmountCents != nil},
		field{"created_at", w.CreatedAt != nil},
	); err != nil {
		return Order{}, err
	}
	created, err := time.Parse(time.RFC3339, *w.CreatedAt)
	if err != nil {
		return Order{}, malformedf("decoding order: created_at: %w", err)
	}
	return Order{OrderID: *w.OrderID, CustomerID: *w.CustomerID, AmountCents: *w.AmountCents, CreatedAt: created}, nil
}

// Validate checks a decoded order against its record key: order_id and
// customer_id non-empty, customer_id equal to key, amount_cents positive.
// Errors wrap ErrMalformed.
func (o Order) Validate(key string) error {
	switch {
	case o.OrderID == "":
		return malformedf("order_id is empty")
	case o.CustomerID == "":
		return malformedf("customer_id is empty")
	case o.CustomerID != key:
		return malformedf("customer_id %q differs from record key %q", o.CustomerID, key)
	case o.AmountCents <= 0:
		return malformedf("amount_cents %d is not positive", o.AmountCents)
	}
	return nil
}

// DecodeEvent decodes a TopicEvents value strictly: all five fields present
// and non-null, the numbers integers. Errors wrap ErrMalformed.
func DecodeEvent(b []byte) (Event, error) {
	var w struct {
		OrderID            *string `json:"order_id"`
		CustomerID         *string `json:"customer_id"`
		AmountCents        *int64  `json:"amount_cents"`
		CustomerOrderCount *int64  `json:"customer_order_count"`
		CustomerTotalCents *int64  `json:"customer_total_cents"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Event{}, malformedf("decoding event: %w", err)
	}
	if err := requireFields("event",
		field{"order_id", w.OrderID != nil},
		field{"customer_id", w.CustomerID != nil},
		field{"amount_cents", w.AmountCents != nil},
		field{"customer_order_count", w.CustomerOrderCount != nil},
		field{"customer_total_cents", w.CustomerTotalCents != nil},
	); err != nil {
		return Event{}, err
	}
	return Event{
		OrderID:            *w.OrderID,
		CustomerID:         *w.CustomerID,
		AmountCents:        *w.AmountCents,
		CustomerOrderCount: *w.CustomerOrderCount,
		CustomerTotalCents: *w.CustomerTotalCents,
	}, nil
}

// Validate checks a decoded event against its record key: order_id
// non-empty and customer_id equal to key. Errors wrap ErrMalformed.
func (e Event) Validate(key string) error {
	switch {
	case e.OrderID == "":
		return malformedf("order_id is empty")
	case e.CustomerID != key:
		return malformedf("customer_id %q differs from record key %q", e.CustomerID, key)
	}
	return nil
}

// DecodePayment decodes a TopicPayments value strictly: all four fields
// present and non-null, the numbers integers. Errors wrap ErrMalformed.
func DecodePayment(b []byte) (Payment, error) {
	var w struct {
		OrderID     *string `json:"order_id"`
		CustomerID  *string `json:"customer_id"`
		AmountCents *int64  `json:"amount_cents"`
		Attempt     *int64  `json:"attempt"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Payment{}, malformedf("decoding payment: %w", err)
	}
	if err := requireFields("payment",
		field{"order_id", w.OrderID != nil},
		field{"customer_id", w.CustomerID != nil},
		field{"amount_cents", w.AmountCents != nil},
		field{"attempt", w.Attempt != nil},
	); err != nil {
		return Payment{}, err
	}
	return Payment{OrderID: *w.OrderID, CustomerID: *w.CustomerID, AmountCents: *w.AmountCents, Attempt: *w.Attempt}, nil
}

// field is a JSON field's name and whether it was present and non-null.
type field struct {
	name    string
	present bool
}

// requireFields reports the first absent field of a what.
func requireFields(what string, fields ...field) error {
	for _, f := range fields {
		if !f.present {
			return malformedf("decoding %s: missing field %s", what, f.name)
		}
	}
	return nil
}
