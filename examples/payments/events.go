package payments

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
)

// Events is a reproducible stream of order events for tests, benchmarks
// and demos: event i is order "o<i>" of customer "c<i%customers>", and
// every malformedEvery-th record (0: none) is a malformed event instead.
type Events struct {
	Topic          string
	Customers      int
	MalformedEvery int
}

// Records returns records from..from+n-1 and the events among them by
// order id; malformed counts the malformed ones.
func (e Events) Records(from, n int) (recs []*kgo.Record, events map[string]orders.Event, malformed int) {
	events = make(map[string]orders.Event, n)
	for i := from; i < from+n; i++ {
		cust := fmt.Sprintf("c%d", i%max(e.Customers, 1))
		r := &kgo.Record{Topic: e.Topic, Key: []byte(cust)}
		if e.MalformedEvery > 0 && i%e.MalformedEvery == e.MalformedEvery-1 {
			r.Value = fmt.Appendf(nil, `{"order_id":"o%d","customer_id":`, i)
			malformed++
		} else {
			ev := orders.Event{OrderID: fmt.Sprintf("o%d", i), CustomerID: cust, AmountCents: int64(100 + i%997), CustomerOrderCount: 1, CustomerTotalCents: int64(100 + i%997)}
			r.Value, _ = json.Marshal(ev)
			events[ev.OrderID] = ev
		}
		recs = append(recs, r)
	}
	return recs, events, malformed
}

// Produce writes records from..from+n-1 with cl (in a transaction when cl
// is transactional, committed unless abort) and returns what Records does,
// nothing when it aborted.
func (e Events) Produce(ctx context.Context, cl *kgo.Client, from, n int, abort bool) (map[string]orders.Event, int, error) {
	recs, events, malformed := e.Records(from, n)
	txn := cl.OptValue(kgo.TransactionalID) != ""
	if txn {
		if err := cl.BeginTransaction(); err != nil {
			return nil, 0, fmt.Errorf("beginning: %w", err)
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, 0, fmt.Errorf("producing events: %w", err)
	}
	if txn {
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(!abort)); err != nil {
			return nil, 0, fmt.Errorf("ending: %w", err)
		}
	}
	if abort {
		return map[string]orders.Event{}, 0, nil
	}
	return events, malformed, nil
}
