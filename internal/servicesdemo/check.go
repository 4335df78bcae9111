package servicesdemo

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/dbsink"
	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/examples/orderservice"
	"github.com/exactly-stream/exactly/examples/payments"
	"github.com/exactly-stream/exactly/outbox"
)

// maxShown bounds the violations listed per check.
const maxShown = 20

// check compares every stage with the orders the API accepted: the
// orders table, the outbox (empty), the orders topic (each order once,
// as accepted), the events topic (one event per order), the payments
// table (one payment per order, applied once, none without an order) and
// the dead letters (none, on the topic and in the sink's table).
func (d *demo) check(ctx context.Context) error {
	var v []string
	add := func(what string, found []string) {
		slices.Sort(found)
		for i, f := range found {
			if i == maxShown {
				v = append(v, fmt.Sprintf("%s: ... and %d more", what, len(found)-maxShown))
				break
			}
			v = append(v, what+": "+f)
		}
	}
	v = append(v, d.rep.Load.Mismatched...)

	saved, err := orderservice.Read(ctx, d.orderDB.DB)
	if err != nil {
		return err
	}
	d.rep.Saved = len(saved)
	add("orders table", d.checkSaved(saved))
	if left, err := d.orderDB.count(ctx, outbox.DefaultTable); err != nil {
		return err
	} else if left > 0 {
		v = append(v, fmt.Sprintf("outbox: %d rows never relayed", left))
	}

	published, err := d.readOrders(ctx, d.topics.Orders)
	if err != nil {
		return err
	}
	d.rep.Published = count(published)
	add("orders topic", d.checkOnce(published, func(o orders.Order, got orders.Order) bool {
		return got.CustomerID == o.CustomerID && got.AmountCents == o.AmountCents && got.CreatedAt.Equal(o.CreatedAt)
	}))
	events, err := d.readEvents(ctx)
	if err != nil {
		return err
	}
	d.rep.Events = count(events)
	add("events topic", d.checkOnce(events, func(o orders.Order, got orders.Order) bool {
		return got.CustomerID == o.CustomerID && got.AmountCents == o.AmountCents
	}))

	paid, err := payments.Read(ctx, d.payDB.DB)
	if err != nil {
		return err
	}
	d.rep.Paid = len(paid)
	want := make(map[string]orders.Event, len(d.accepted))
	for id, o := range d.accepted {
		want[id] = orders.Event{OrderID: id, CustomerID: o.CustomerID, AmountCents: o.AmountCents}
	}
	add("payments table", payments.Check(paid, want))

	dlq, err := exactlytest.ReadCommitted(ctx, d.cl, d.topics.DLQ, exactlytest.ReadOptions{})
	if err != nil {
		return fmt.Errorf("reading %s: %w", d.topics.DLQ, err)
	}
	if n := len(exactlytest.Records(dlq)); n > 0 {
		v = append(v, fmt.Sprintf("%s: %d dead-lettered orders", d.topics.DLQ, n))
	}
	if n, err := d.payDB.count(ctx, dbsink.DefaultTables().DeadLetters); err != nil {
		return err
	} else if n > 0 {
		v = append(v, fmt.Sprintf("%s: %d dead-lettered events", dbsink.DefaultTables().DeadLetters, n))
	}
	d.rep.Violations = v
	return nil
}

// checkSaved finds accepted orders missing from (or different in) the
// orders table, and saved orders the API never accepted.
func (d *demo) checkSaved(saved map[string]orderservice.Saved) []string {
	var out []string
	for id, o := range d.accepted {
		s, ok := saved[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("order %s accepted but not saved", id))
		case s.CustomerID != o.CustomerID || s.AmountCents != o.AmountCents:
			out = append(out, fmt.Sprintf("order %s saved as %d for %s, accepted as %d for %s", id, s.AmountCents, s.CustomerID, o.AmountCents, o.CustomerID))
		}
	}
	for id := range saved {
		if _, ok := d.accepted[id]; !ok {
			out = append(out, fmt.Sprintf("order %s saved but never accepted", id))
		}
	}
	return out
}

// checkOnce finds accepted orders that a topic (read as orders by id)
// holds other than once or unlike same says, and records of orders never
// accepted.
func (d *demo) checkOnce(got map[string][]orders.Order, same func(accepted, got orders.Order) bool) []string {
	var out []string
	for id, o := range d.accepted {
		switch rs := got[id]; {
		case len(rs) == 0:
			out = append(out, fmt.Sprintf("order %s: missing", id))
		case len(rs) > 1:
			out = append(out, fmt.Sprintf("order %s: %d times", id, len(rs)))
		case !same(o, rs[0]):
			out = append(out, fmt.Sprintf("order %s: %+v, accepted as %+v", id, rs[0], o))
		}
	}
	for id, rs := range got {
		if _, ok := d.accepted[id]; !ok {
			out = append(out, fmt.Sprintf("order %s: %d records, never accepted", id, len(rs)))
		}
	}
	return out
}

func count(m map[string][]orders.Order) int {
	n := 0
	for _, rs := range m {
		n += len(rs)
	}
	return n
}

// readOrders reads the orders topic with read_committed, by order id; an
// undecodable record is listed under its position.
func (d *demo) readOrders(ctx context.Context, topic string) (map[string][]orders.Order, error) {
	return d.read(ctx, topic, func(r *kgo.Record) (orders.Order, error) {
		o, err := orders.DecodeOrder(r.Value)
		if err == nil {
			err = o.Validate(string(r.Key))
		}
		return o, err
	})
}

// readEvents reads the events topic, each event as the order it is for.
func (d *demo) readEvents(ctx context.Context) (map[string][]orders.Order, error) {
	return d.read(ctx, d.topics.Events, func(r *kgo.Record) (orders.Order, error) {
		ev, err := orders.DecodeEvent(r.Value)
		if err == nil {
			err = ev.Validate(string(r.Key))
		}
		return orders.Order{OrderID: ev.OrderID, CustomerID: ev.CustomerID, AmountCents: ev.AmountCents}, err
	})
}

func (d *demo) read(ctx context.Context, topic string, decode func(*kgo.Record) (orders.Order, error)) (map[string][]orders.Order, error) {
	out := map[string][]orders.Order{}
	err := exactlytest.ReadCommittedFunc(ctx, d.cl, topic, exactlytest.ReadOptions{}, func(r *kgo.Record) error {
		o, err := decode(r)
		if err != nil {
			o.OrderID = fmt.Sprintf("undecodable record at %s/%d@%d (%v)", r.Topic, r.Partition, r.Offset, err)
		}
		out[o.OrderID] = append(out[o.OrderID], o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", topic, err)
	}
	return out, nil
}
