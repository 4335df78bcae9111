package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/orders"
)

// outputSize is what the order pipeline produces for one input record:
// the value size of its event and, for each store write, of its changelog
// record (customer, order id), and the key size of the order id's
// changelog record; 0 for none. An upstream duplicate produces nothing; a
// rejected order produces a dead-letter record, counted as an event of the
// input's size.
type outputSize struct {
	event, customer, orderID, orderIDKey int32
}

// outputSizes holds, per input partition, the outputSize of each offset.
type outputSizes map[int32][]outputSize

func (s outputSizes) of(part int32, offset int64) outputSize {
	if offs := s[part]; offset >= 0 && offset < int64(len(offs)) {
		return offs[offset]
	}
	return outputSize{}
}

// bytes returns the total value bytes of the events and of the changelog
// records of both stores.
func (s outputSizes) bytes() (events, changelog int64) {
	for _, offs := range s {
		for _, o := range offs {
			events += int64(o.event)
			changelog += int64(o.customer) + int64(o.orderID)
		}
	}
	return events, changelog
}

// largest returns the largest size of any output value or key.
func (s outputSizes) largest() int {
	n := 0
	for _, offs := range s {
		for _, o := range offs {
			n = max(n, int(o.event), int(o.customer), int(o.orderID), int(o.orderIDKey))
		}
	}
	return n
}

// sizeFold folds orders the way the order topology does, per task
// (input partition) in offset order, and records the size of each
// record's outputs. It repeats what OrderTopology computes so that the
// ceiling loop can produce the same bytes without decoding or keeping
// state itself.
type sizeFold struct {
	customers map[string]*orders.Customer
	orderIDs  map[int32]map[string]string // per task: order id -> customer id
	sizes     outputSizes
}

func newSizeFold() *sizeFold {
	return &sizeFold{customers: make(map[string]*orders.Customer), orderIDs: make(map[int32]map[string]string), sizes: make(outputSizes)}
}

func (f *sizeFold) add(r *kgo.Record) error {
	offs := f.sizes[r.Partition]
	if int64(len(offs)) != r.Offset {
		return fmt.Errorf("input %s partition %d: offset %d after %d records (the input must start at 0 without gaps)",
			r.Topic, r.Partition, r.Offset, len(offs))
	}
	out, err := f.outputs(r)
	f.sizes[r.Partition] = append(offs, out)
	return err
}

func (f *sizeFold) outputs(r *kgo.Record) (outputSize, error) {
	key := string(r.Key)
	o, err := orders.DecodeOrder(r.Value)
	if err == nil {
		err = o.Validate(key)
	}
	if err != nil {
		return outputSize{event: int32(len(r.Value))}, nil // dead-lettered as it is
	}
	ids := f.orderIDs[r.Partition]
	if ids == nil {
		ids = make(map[string]string)
		f.orderIDs[r.Partition] = ids
	}
	switch owner, seen := ids[o.OrderID]; {
	case seen && owner == key:
		return outputSize{}, nil // upstream duplicate
	case seen:
		return outputSize{event: int32(len(r.Value))}, nil // another customer's order id: dead-lettered
	}
	ids[o.OrderID] = key
	c := f.customers[key]
	if c == nil {
		c = &orders.Customer{}
		f.customers[key] = c
	}
	c.OrderCount++
	c.TotalCents += o.AmountCents
	cv, err := orders.CustomerSerde().Encode(*c)
	if err != nil {
		return outputSize{}, fmt.Errorf("encoding customer: %w", err)
	}
	ev, err := orders.EventSerde().Encode(orders.Event{
		OrderID: o.OrderID, CustomerID: o.CustomerID, AmountCents: o.AmountCents,
		CustomerOrderCount: c.OrderCount, CustomerTotalCents: c.TotalCents,
	})
	if err != nil {
		return outputSize{}, fmt.Errorf("encoding event: %w", err)
	}
	return outputSize{event: int32(len(ev)), customer: int32(len(cv)), orderID: int32(len(key)), orderIDKey: int32(len(o.OrderID))}, nil
}

// readTopic reads topic with read_committed from its start to its last
// stable offsets as they are now and feeds every data record to fn, in
// offset order per partition (exactlytest.ReadCommittedFunc). It returns
// the number of data records read.
func readTopic(ctx context.Context, c *cluster, topic string, fn func(*kgo.Record) error) (int64, error) {
	var read int64
	var fnErr error
	err := exactlytest.ReadCommittedFunc(ctx, c.cl, topic, exactlytest.ReadOptions{Timeout: 10 * time.Minute}, func(r *kgo.Record) error {
		read++
		fnErr = fn(r)
		return fnErr
	})
	switch {
	case fnErr != nil:
		return read, fnErr
	case err != nil:
		return read, fmt.Errorf("reading %s: %d records: %w", topic, read, err)
	}
	return read, nil
}
