package orders

import (
	"fmt"

	"github.com/exactly-stream/exactly/topology"
)

// Node names of the two topologies.
const (
	NodeOrders       = "orders"       // source of TopicOrders
	NodeApply        = "apply"        // applies an order to its customer
	NodeEvents       = "events"       // sink to TopicEvents
	NodeOrderEvents  = "order-events" // source of TopicEvents (payment stage)
	NodePay          = "pay"          // counts payment attempts per order
	NodePaymentsSink = "payments"     // sink to TopicPayments
)

// OrderTopology returns the order service: it reads TopicOrders (key:
// customer id, value: Order), keeps a Customer per customer id in
// StoreCustomers and the customer id of every applied order id in
// StoreOrderIDs and, for each order whose id it has not seen, emits an
// Event to TopicEvents with the customer's new count and total. An order
// id seen before for the same customer is an upstream duplicate: no state
// change, no event. A malformed order (DecodeOrder or Order.Validate
// fails), or one whose id was applied for another customer, makes Process
// return an error for which topology.IsBadRecord is true; the runtime
// dead-letters it.
//
// Order ids are assumed unique across customers, as the payment stage
// assumes and Produce makes them. The duplicate check sees only its task's
// orders, so an id reused by a customer of another input partition is not
// caught here (the payment stage then reports attempt 2).
func OrderTopology() (*topology.Topology, error) { return OrderTopologyFor(DefaultTopics()) }

// Topics names the pipeline's topics, so that several pipelines can share a
// cluster (tests on a real cluster, staging next to production).
type Topics struct {
	Orders, Events, DLQ, Payments, PaymentsDLQ string
}

// DefaultTopics returns the default topic names.
func DefaultTopics() Topics {
	return TopicsWithPrefix("")
}

// TopicsWithPrefix returns the default topic names with prefix prepended.
func TopicsWithPrefix(prefix string) Topics {
	return Topics{
		Orders: prefix + TopicOrders, Events: prefix + TopicEvents, DLQ: prefix + TopicDLQ,
		Payments: prefix + TopicPayments, PaymentsDLQ: prefix + TopicPaymentsDLQ,
	}
}

// VerifyOptions returns Verify options reading these topics.
func (ts Topics) VerifyOptions(payments bool) VerifyOptions {
	return VerifyOptions{
		Payments: payments, OrdersTopic: ts.Orders, EventsTopic: ts.Events, DLQTopic: ts.DLQ,
		PaymentsTopic: ts.Payments, PaymentsDLQTopic: ts.PaymentsDLQ,
	}
}

// OrderTopologyFor is OrderTopology on the topics ts names.
func OrderTopologyFor(ts Topics) (*topology.Topology, error) {
	b := topology.NewBuilder()
	src := topology.Source(b, NodeOrders, ts.Orders, topology.String(), OrderSerde())
	customers := topology.Store(b, StoreCustomers, topology.String(), CustomerSerde())
	orderIDs := topology.Store(b, StoreOrderIDs, topology.String(), topology.String())
	events := topology.Sink(b, NodeEvents, ts.Events, topology.String(), EventSerde(), topology.Parents(NodeApply))
	topology.Node(b, NodeApply, applyOrder(customers, orderIDs, events),
		topology.Parents(src.Name()), topology.Stores(customers.Name(), orderIDs.Name()))
	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("building order topology: %w", err)
	}
	return t, nil
}

// applyOrder is the order service's hot path: the order is decoded once by
// the source; here two Gets, two Puts and one Send, each of a constant
// size.
func applyOrder(customers topology.StoreRef[string, Customer], orderIDs topology.StoreRef[string, string],
	events topology.SinkRef[string, Event]) topology.NodeFunc[string, Order] {
	return func(ctx *topology.Call, r topology.Record[string, Order]) error {
		o := r.Value
		if err := o.Validate(r.Key); err != nil {
			return err
		}
		owner, seen, err := orderIDs.Get(ctx, o.OrderID)
		switch {
		case err != nil:
			return fmt.Errorf("reading order id %q: %w", o.OrderID, err)
		case seen && owner == r.Key:
			return nil // upstream duplicate
		case seen:
			return malformedf("order_id %q was applied for customer %q", o.OrderID, owner)
		}
		c, _, err := customers.Get(ctx, r.Key)
		if err != nil {
			return fmt.Errorf("reading customer %q: %w", r.Key, err)
		}
		c.apply(o)
		if err := customers.Put(ctx, r.Key, c); err != nil {
			return fmt.Errorf("writing customer %q: %w", r.Key, err)
		}
		if err := orderIDs.Put(ctx, o.OrderID, r.Key); err != nil {
			return fmt.Errorf("writing order id %q: %w", o.OrderID, err)
		}
		return events.Send(ctx, r.Key, eventFor(o, c))
	}
}

// PaymentTopology returns the payment stage, run as its own application
// (consumer group): it reads TopicEvents (key: customer id, value: Event),
// counts in StorePayments how often it saw each order id, and emits one
// Payment per event to TopicPayments keyed by customer id, with Attempt set
// to that count. It deliberately does not hide duplicates: an event seen
// twice shows up as attempt 2, which Verify reports.
//
// Payment state is keyed by order id alone, so order ids are assumed unique
// across customers (as Produce makes them).
func PaymentTopology() (*topology.Topology, error) { return PaymentTopologyFor(DefaultTopics()) }

// PaymentTopologyFor is PaymentTopology on the topics ts names.
func PaymentTopologyFor(ts Topics) (*topology.Topology, error) {
	b := topology.NewBuilder()
	src := topology.Source(b, NodeOrderEvents, ts.Events, topology.String(), EventSerde())
	state := topology.Store(b, StorePayments, topology.String(), PaymentStateSerde())
	payments := topology.Sink(b, NodePaymentsSink, ts.Payments, topology.String(), PaymentSerde(), topology.Parents(NodePay))
	topology.Node(b, NodePay, pay(state, payments),
		topology.Parents(src.Name()), topology.Stores(state.Name()))
	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("building payment topology: %w", err)
	}
	return t, nil
}

// pay is the payment stage's hot path: one Get, one Put, one Send.
func pay(state topology.StoreRef[string, PaymentState], payments topology.SinkRef[string, Payment]) topology.NodeFunc[string, Event] {
	return func(ctx *topology.Call, r topology.Record[string, Event]) error {
		ev := r.Value
		if err := ev.Validate(r.Key); err != nil {
			return err
		}
		st, _, err := state.Get(ctx, ev.OrderID)
		if err != nil {
			return fmt.Errorf("reading payment state of order %q: %w", ev.OrderID, err)
		}
		st.Attempts++
		st.AmountCents = ev.AmountCents
		if err := state.Put(ctx, ev.OrderID, st); err != nil {
			return fmt.Errorf("writing payment state of order %q: %w", ev.OrderID, err)
		}
		return payments.Send(ctx, r.Key, Payment{
			OrderID:     ev.OrderID,
			CustomerID:  ev.CustomerID,
			AmountCents: ev.AmountCents,
			Attempt:     st.Attempts,
		})
	}
}
