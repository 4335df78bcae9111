// Package orders is exactly's reference application and its proof.
//
// The order service (OrderTopology) reads orders keyed by customer id from
// TopicOrders, keeps per-customer state (order count, total) in
// StoreCustomers and every applied order id in StoreOrderIDs, skips upstream
// duplicates (an order id already applied for the customer) and emits one
// Event per new order to TopicEvents with the customer's count and total
// after it. Malformed orders fail decoding (DecodeOrder) or validation
// (Order.Validate); the runtime dead-letters them to TopicDLQ. The payment
// stage (PaymentTopology), its own application, reads the events and emits
// one Payment per event to TopicPayments, counting attempts per order so
// that a duplicate event shows up instead of being hidden.
//
// Produce writes a reproducible input with malformed records and duplicates;
// Verify reads everything back with read_committed and checks the
// invariants E1, E2, E3 and E5 of DESIGN.md and the payment stage,
// and returns the fold of the inputs (Expected) for E4, which
// CheckLocalState checks on the order service's state directories.
package orders
