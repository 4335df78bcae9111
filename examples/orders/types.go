package orders

import (
	"encoding/json"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// Topics of the order pipeline.
const (
	// TopicOrders is the input topic, keyed by customer id.
	TopicOrders = "orders"
	// TopicEvents is the order service's output, keyed by customer id.
	TopicEvents = "order-events"
	// TopicDLQ is the dead-letter topic for malformed orders.
	TopicDLQ = "orders-dlq"
	// TopicPayments is the payment stage's output, keyed by customer id.
	TopicPayments = "payments"
	// TopicPaymentsDLQ is the payment stage's dead-letter topic. A correct
	// order service gives it nothing to dead-letter.
	TopicPaymentsDLQ = "payments-dlq"
)

// Default consumer groups (application ids) of the two stages. A stage's
// changelog topics are named after its group.
const (
	DefaultOrderGroup   = "exactly-orders"
	DefaultPaymentGroup = "exactly-payments"
)

// State stores of the pipeline.
const (
	// StoreCustomers holds one Customer per customer id (order service).
	StoreCustomers = "customers"
	// StoreOrderIDs holds, per applied order id, the id of its customer as
	// raw bytes (topology.String): the order service's duplicate check.
	// Input records are keyed by customer id and a re-sent order carries
	// its customer's key, so an order id's entry lives in the same task
	// (partition) as its customer.
	StoreOrderIDs = "order-ids"
	// StorePayments holds one PaymentState per order id (payment stage).
	StorePayments = "payments-state"
)

// Dead-letter headers, as the runtime writes them. Partition and offset are
// decimal ASCII.
const (
	HeaderError           = "exactly.error"
	HeaderSourceTopic     = "exactly.source.topic"
	HeaderSourcePartition = "exactly.source.partition"
	HeaderSourceOffset    = "exactly.source.offset"
)

// Order is a value of TopicOrders. DecodeOrder decodes it strictly and
// Validate checks it against its record key.
type Order struct {
	OrderID     string    `json:"order_id"`
	CustomerID  string    `json:"customer_id"`
	AmountCents int64     `json:"amount_cents"`
	CreatedAt   time.Time `json:"created_at"`
}

// Event is a value of TopicEvents: one applied order with the customer's
// order count and total after it.
type Event struct {
	OrderID            string `json:"order_id"`
	CustomerID         string `json:"customer_id"`
	AmountCents        int64  `json:"amount_cents"`
	CustomerOrderCount int64  `json:"customer_order_count"`
	CustomerTotalCents int64  `json:"customer_total_cents"`
}

// OrderStores returns the stores of the order service, in the order
// OrderTopology declares them. Each has its changelog
// processor.ChangelogTopic(group, store).
func OrderStores() []string { return []string{StoreCustomers, StoreOrderIDs} }

// Customer is the per-customer state in StoreCustomers: how many orders were
// applied and their total. It has a constant size: the ids of the applied
// orders, which the duplicate check needs, are in StoreOrderIDs, one entry
// per order, so the cost of an order does not grow with its customer's
// history.
type Customer struct {
	OrderCount int64 `json:"order_count"`
	TotalCents int64 `json:"total_cents"`
}

// Payment is a value of TopicPayments. Attempt counts how often the payment
// stage saw the order; anything but 1 means an upstream duplicate.
type Payment struct {
	OrderID     string `json:"order_id"`
	CustomerID  string `json:"customer_id"`
	AmountCents int64  `json:"amount_cents"`
	Attempt     int64  `json:"attempt"`
}

// PaymentState is the per-order state in StorePayments.
type PaymentState struct {
	Attempts    int64 `json:"attempts"`
	AmountCents int64 `json:"amount_cents"`
}

// apply adds o, a new order of the customer, to c.
func (c *Customer) apply(o Order) {
	c.OrderCount++
	c.TotalCents += o.AmountCents
}

// eventFor is the event emitted for o applied to c.
func eventFor(o Order, c Customer) Event {
	return Event{
		OrderID:            o.OrderID,
		CustomerID:         o.CustomerID,
		AmountCents:        o.AmountCents,
		CustomerOrderCount: c.OrderCount,
		CustomerTotalCents: c.TotalCents,
	}
}

func encodeJSON[T any](v T) ([]byte, error) { return json.Marshal(v) }

// OrderSerde is the Serde of TopicOrders values; it decodes with DecodeOrder.
func OrderSerde() topology.Serde[Order] {
	return topology.SerdeFuncs[Order]{EncodeFunc: encodeJSON[Order], DecodeFunc: DecodeOrder}
}

// EventSerde is the Serde of TopicEvents values; it decodes with DecodeEvent.
func EventSerde() topology.Serde[Event] {
	return topology.SerdeFuncs[Event]{EncodeFunc: encodeJSON[Event], DecodeFunc: DecodeEvent}
}

// PaymentSerde is the Serde of TopicPayments values; it decodes with
// DecodePayment.
func PaymentSerde() topology.Serde[Payment] {
	return topology.SerdeFuncs[Payment]{EncodeFunc: encodeJSON[Payment], DecodeFunc: DecodePayment}
}

// CustomerSerde is the Serde of StoreCustomers values: JSON, the bytes
// encoding/json writes, encoded and decoded by hand (encoding/json decodes
// anything but the layout it writes). Callers that compare local state
// with Report.Expected decode it with this.
func CustomerSerde() topology.Serde[Customer] { return customerSerde{} }

// PaymentStateSerde is the Serde of StorePayments values (JSON).
func PaymentStateSerde() topology.Serde[PaymentState] { return topology.JSON[PaymentState]() }
