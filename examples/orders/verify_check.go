package orders

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// position is a record's place in a topic.
type position struct {
	partition int32
	offset    int64
}

func comparePositions(a, b position) int {
	return cmp.Or(cmp.Compare(a.partition, b.partition), cmp.Compare(a.offset, b.offset))
}

// orderKey names an order of a customer.
type orderKey struct{ customer, order string }

func compareOrderKeys(a, b orderKey) int {
	return cmp.Or(cmp.Compare(a.customer, b.customer), cmp.Compare(a.order, b.order))
}

// fold is the expected outcome of the orders: per customer the state and the
// events, the customer of every applied order id, and the malformed records.
// It is computed here independently of the topology, over all partitions.
// A state reset (VerifyOptions.Resets) starts an epoch: state and duplicate
// check start empty, the expected events go on in the same list.
type fold struct {
	customers map[string]*customerFold
	orderIDs  []map[string]string // per epoch: applied order id -> customer id
	malformed map[position]rawRecord
}

type customerFold struct {
	partition int32 // input partition of the first order
	spanned   bool  // reported as spanning input partitions
	epoch     int   // of state
	state     Customer
	want      []Event // of every epoch, in input order
}

type rawRecord struct{ key, value []byte }

// newFold returns an empty fold for resets+1 epochs.
func newFold(resets int) *fold {
	f := &fold{
		customers: make(map[string]*customerFold),
		orderIDs:  make([]map[string]string, resets+1),
		malformed: make(map[position]rawRecord),
	}
	for i := range f.orderIDs {
		f.orderIDs[i] = make(map[string]string)
	}
	return f
}

// expected returns the state the last epoch leaves: the final state per
// customer that has a valid order in it, and the customer of every order
// id it applied.
func (f *fold) expected() Expected {
	last := len(f.orderIDs) - 1
	out := Expected{Customers: make(map[string]Customer, len(f.customers)), OrderIDs: maps.Clone(f.orderIDs[last])}
	for id, c := range f.customers {
		if c.epoch == last && c.state.OrderCount > 0 {
			out.Customers[id] = c.state
		}
	}
	return out
}

// wantCounts returns how many events every order must have: one per epoch
// that applied it.
func (f *fold) wantCounts() map[orderKey]int {
	out := make(map[orderKey]int)
	for id, c := range f.customers {
		for _, ev := range c.want {
			out[orderKey{id, ev.OrderID}]++
		}
	}
	return out
}

func (f *fold) sortedCustomers() []string {
	return slices.Sorted(maps.Keys(f.customers))
}

// foldOrder applies one input record to the fold.
func (v *verifier) foldOrder(r *kgo.Record) {
	v.report.Inputs++
	key := string(r.Key)
	o, err := DecodeOrder(r.Value)
	if err == nil {
		err = o.Validate(key)
	}
	if err != nil {
		v.foldMalformed(r)
		return
	}
	c := v.customer(key, r)
	epoch := v.opts.epoch(r.Partition, r.Offset)
	ids := v.fold.orderIDs[epoch]
	switch owner, seen := ids[o.OrderID]; {
	case seen && owner == key:
		v.report.Duplicates++
		return
	case seen:
		// The order service rejects the order if it sees the first one
		// (same input partition), else applies it: undefined here.
		v.report.addf(CheckRead, "%s: order id %q of customer %q was applied for customer %q: order ids must be unique across customers",
			where(v.opts.OrdersTopic, r.Partition, r.Offset), o.OrderID, key, owner)
		v.foldMalformed(r)
		return
	}
	if c.epoch != epoch {
		c.epoch, c.state = epoch, Customer{} // a reset emptied the state
	}
	v.report.Valid++
	ids[o.OrderID] = key
	c.state.OrderCount++
	c.state.TotalCents += o.AmountCents
	c.want = append(c.want, eventFor(o, c.state))
}

// foldMalformed records an input the order service rejects.
func (v *verifier) foldMalformed(r *kgo.Record) {
	v.report.Malformed++
	v.fold.malformed[position{r.Partition, r.Offset}] = rawRecord{bytes.Clone(r.Key), bytes.Clone(r.Value)}
}

// customer returns the fold of a customer, reporting once if its orders
// span input partitions (then its order, and so E2, is undefined).
func (v *verifier) customer(id string, r *kgo.Record) *customerFold {
	c := v.fold.customers[id]
	if c == nil {
		c = &customerFold{partition: r.Partition}
		v.fold.customers[id] = c
	}
	if c.partition != r.Partition && !c.spanned {
		c.spanned = true
		v.report.addf(CheckRead, "customer %q has orders in %s[%d] and %s: per-customer order is undefined",
			id, v.opts.OrdersTopic, c.partition, where(v.opts.OrdersTopic, r.Partition, r.Offset))
	}
	return c
}

// eventIndex holds the events read.
type eventIndex struct {
	byCustomer map[string][]gotEvent
	count      map[orderKey]int
	amount     map[orderKey]int64 // of the first event of the order
}

type gotEvent struct {
	Event
	pos position
}

func newEventIndex() *eventIndex {
	return &eventIndex{
		byCustomer: make(map[string][]gotEvent),
		count:      make(map[orderKey]int),
		amount:     make(map[orderKey]int64),
	}
}

// indexEvent records one event; an event that does not decode or does not
// match its key is an event for nothing valid (E1).
func (v *verifier) indexEvent(r *kgo.Record) {
	v.report.Events++
	at := where(v.opts.EventsTopic, r.Partition, r.Offset)
	ev, err := DecodeEvent(r.Value)
	if err == nil {
		err = ev.Validate(string(r.Key))
	}
	if err != nil {
		v.report.addf(CheckE1, "%s: bad event: %s", at, err.Error())
		return
	}
	k := orderKey{ev.CustomerID, ev.OrderID}
	if v.events.count[k] == 0 {
		v.events.amount[k] = ev.AmountCents
	}
	v.events.count[k]++
	v.events.byCustomer[ev.CustomerID] = append(v.events.byCustomer[ev.CustomerID], gotEvent{ev, position{r.Partition, r.Offset}})
}

// checkEvents runs E1 and E2 once all events are read.
func (v *verifier) checkEvents() {
	v.checkE1()
	for _, id := range v.fold.sortedCustomers() {
		v.checkE2(id, v.fold.customers[id].want, v.events.byCustomer[id])
	}
}

// checkE1: each valid order has exactly one event per epoch that applied
// it (one without resets); no other event exists.
func (v *verifier) checkE1() {
	want := v.fold.wantCounts()
	reported := make(map[orderKey]bool)
	for _, id := range v.fold.sortedCustomers() {
		for _, ev := range v.fold.customers[id].want {
			k := orderKey{id, ev.OrderID}
			if n := v.events.count[k]; n != want[k] && !reported[k] {
				reported[k] = true
				v.report.addf(CheckE1, "order %q of customer %q: %d events, want %d", ev.OrderID, id, n, want[k])
			}
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(v.events.count), compareOrderKeys) {
		if want[k] == 0 {
			v.report.addf(CheckE1, "order %q of customer %q: %d events for an order that is not a valid input", k.order, k.customer, v.events.count[k])
		}
	}
}

// checkE2 compares a customer's events, in partition order, with the fold:
// counts must run 1..n (restarting at 1 after a reset) and every event must
// equal the expected one. It reports the first difference only, as all
// later events differ too.
func (v *verifier) checkE2(id string, want []Event, got []gotEvent) {
	for i, g := range got {
		at := where(v.opts.EventsTopic, g.pos.partition, g.pos.offset)
		if g.pos.partition != got[0].pos.partition {
			v.report.addf(CheckE2, "customer %q: events in %s[%d] and %s: per-customer order is undefined", id, v.opts.EventsTopic, got[0].pos.partition, at)
			return
		}
		if n := wantCount(want, i); g.CustomerOrderCount != n {
			v.report.addf(CheckE2, "customer %q: event %d at %s has count %d, want %d (gap or repeat)", id, i+1, at, g.CustomerOrderCount, n)
			return
		}
		if i >= len(want) {
			v.report.addf(CheckE2, "customer %q: event %d at %s (order %q) is past the %d expected", id, i+1, at, g.OrderID, len(want))
			return
		}
		if g.Event != want[i] {
			v.report.addf(CheckE2, "customer %q: event %d at %s is %+v, want %+v", id, i+1, at, g.Event, want[i])
			return
		}
	}
	if len(got) < len(want) {
		v.report.addf(CheckE2, "customer %q: %d events, want %d", id, len(got), len(want))
	}
}

// wantCount returns the count the i-th event (from 0) of a customer must
// carry: the expected event's, and past the expected ones the count that
// would follow the last (i+1 without resets).
func wantCount(want []Event, i int) int64 {
	if i < len(want) {
		return want[i].CustomerOrderCount
	}
	last := int64(0)
	if len(want) > 0 {
		last = want[len(want)-1].CustomerOrderCount
	}
	return last + int64(i-len(want)+1)
}

// dlqSource returns the input position a dead-letter record's headers
// name, or why they name none.
func dlqSource(hs []kgo.RecordHeader, wantTopic string) (position, string) {
	vals := make(map[string]string, len(hs))
	for _, h := range hs {
		if _, dup := vals[h.Key]; !dup {
			vals[h.Key] = string(h.Value)
		}
	}
	for _, name := range []string{HeaderError, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset} {
		if _, ok := vals[name]; !ok {
			return position{}, "missing header " + name
		}
	}
	if vals[HeaderError] == "" {
		return position{}, "empty header " + HeaderError
	}
	if t := vals[HeaderSourceTopic]; t != wantTopic {
		return position{}, fmt.Sprintf("header %s is %q, want %q", HeaderSourceTopic, t, wantTopic)
	}
	p, err := strconv.ParseInt(vals[HeaderSourcePartition], 10, 32)
	if err != nil {
		return position{}, fmt.Sprintf("bad header %s: %s", HeaderSourcePartition, err.Error())
	}
	o, err := strconv.ParseInt(vals[HeaderSourceOffset], 10, 64)
	if err != nil {
		return position{}, fmt.Sprintf("bad header %s: %s", HeaderSourceOffset, err.Error())
	}
	return position{int32(p), o}, ""
}

// matchDLQ matches one dead-letter record with the malformed input it
// names (E3).
func (v *verifier) matchDLQ(r *kgo.Record) {
	v.report.DLQ++
	at := where(v.opts.DLQTopic, r.Partition, r.Offset)
	pos, bad := dlqSource(r.Headers, v.opts.OrdersTopic)
	if bad != "" {
		v.report.addf(CheckE3, "%s: %s", at, bad)
		return
	}
	src := where(v.opts.OrdersTopic, pos.partition, pos.offset)
	in, ok := v.fold.malformed[pos]
	switch {
	case !ok:
		v.report.addf(CheckE3, "%s names %s, which is not a malformed input record", at, src)
		return
	case !bytes.Equal(in.key, r.Key) || !bytes.Equal(in.value, r.Value):
		v.report.addf(CheckE3, "%s names %s but its key or value differ from the input (key %q, want %q)", at, src, r.Key, in.key)
	}
	v.dlq[pos]++
}

// checkDLQ: every malformed record was dead-lettered exactly once (E3).
func (v *verifier) checkDLQ() {
	for _, pos := range slices.SortedFunc(maps.Keys(v.fold.malformed), comparePositions) {
		if n := v.dlq[pos]; n != 1 {
			v.report.addf(CheckE3, "malformed %s: %d records in %s, want 1", where(v.opts.OrdersTopic, pos.partition, pos.offset), n, v.opts.DLQTopic)
		}
	}
}

// matchPayment checks one payment against the events (CheckPayments).
func (v *verifier) matchPayment(r *kgo.Record) {
	v.report.Payments++
	at := where(v.opts.PaymentsTopic, r.Partition, r.Offset)
	p, err := DecodePayment(r.Value)
	switch {
	case err != nil:
		v.report.addf(CheckPayments, "%s: bad payment: %s", at, err.Error())
		return
	case p.CustomerID != string(r.Key):
		v.report.addf(CheckPayments, "%s: customer_id %q differs from record key %q", at, p.CustomerID, r.Key)
		return
	}
	k := orderKey{p.CustomerID, p.OrderID}
	if v.events.count[k] == 0 {
		v.report.addf(CheckPayments, "%s: payment for order %q of customer %q, which has no event", at, p.OrderID, p.CustomerID)
		return
	}
	if want := v.events.amount[k]; p.AmountCents != want {
		v.report.addf(CheckPayments, "%s: order %q amount %d, event says %d", at, p.OrderID, p.AmountCents, want)
	}
	if p.Attempt != 1 {
		v.report.addf(CheckPayments, "%s: order %q of customer %q has attempt %d, want 1 (the payment stage saw it %d times)", at, p.OrderID, p.CustomerID, p.Attempt, p.Attempt)
	}
	v.payments[k]++
}

// checkPayments: as many payments as events for every order.
func (v *verifier) checkPayments() {
	for _, k := range slices.SortedFunc(maps.Keys(v.events.count), compareOrderKeys) {
		if n, want := v.payments[k], v.events.count[k]; n != want {
			v.report.addf(CheckPayments, "order %q of customer %q: %d payments for %d events", k.order, k.customer, n, want)
		}
	}
}

// rejectPaymentDLQ reports a record the payment stage dead-lettered: every
// event of a correct order service is valid.
func (v *verifier) rejectPaymentDLQ(r *kgo.Record) {
	v.report.PaymentsDLQ++
	reason := "no " + HeaderError + " header"
	for _, h := range r.Headers {
		if h.Key == HeaderError {
			reason = string(h.Value)
			break
		}
	}
	v.report.addf(CheckPayments, "%s: the payment stage dead-lettered an event: %s", where(v.opts.PaymentsDLQTopic, r.Partition, r.Offset), reason)
}
