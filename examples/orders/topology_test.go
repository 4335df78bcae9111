package orders

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

func orderInput(t *testing.T, offset int64, key string, o Order) *topology.Input {
	t.Helper()
	v, err := json.Marshal(o)
	require.NoError(t, err)
	return &topology.Input{Topic: TopicOrders, Offset: offset, Key: []byte(key), Value: v}
}

func order(id, customer string, amount int64) Order {
	return Order{OrderID: id, CustomerID: customer, AmountCents: amount, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func decodeEvents(t *testing.T, rt *memRuntime) []Event {
	t.Helper()
	var out []Event
	for _, r := range rt.out {
		require.Equal(t, TopicEvents, r.Topic)
		ev, err := DecodeEvent(r.Value)
		require.NoError(t, err)
		require.Equal(t, ev.CustomerID, string(r.Key))
		out = append(out, ev)
	}
	return out
}

func customerState(t *testing.T, rt *memRuntime, id string) Customer {
	t.Helper()
	b, ok := rt.state[StoreCustomers][id]
	require.True(t, ok, "no state for %s", id)
	c, err := CustomerSerde().Decode(b)
	require.NoError(t, err)
	return c
}

func TestOrderTopologyShape(t *testing.T) {
	t.Parallel()
	top, err := OrderTopology()
	require.NoError(t, err)
	require.Equal(t, []string{TopicOrders}, top.SourceTopics())
	require.Equal(t, []string{TopicEvents}, top.SinkTopics())
	require.Equal(t, OrderStores(), top.StoreNames())
	for _, store := range OrderStores() {
		require.Equal(t, []string{TopicOrders}, top.StoreSources(store), store)
	}

	top, err = PaymentTopology()
	require.NoError(t, err)
	require.Equal(t, []string{TopicEvents}, top.SourceTopics())
	require.Equal(t, []string{TopicPayments}, top.SinkTopics())
	require.Equal(t, []string{StorePayments}, top.StoreNames())
}

func TestOrderTopologyCountsAndTotals(t *testing.T) {
	t.Parallel()
	top, err := OrderTopology()
	require.NoError(t, err)
	rt := newMemRuntime()
	inputs := []*topology.Input{
		orderInput(t, 0, "c-1", order("o-1", "c-1", 100)),
		orderInput(t, 1, "c-2", order("o-2", "c-2", 7)),
		orderInput(t, 2, "c-1", order("o-3", "c-1", 50)),
		orderInput(t, 3, "c-1", order("o-4", "c-1", 1)),
	}
	for _, in := range inputs {
		require.NoError(t, rt.process(top, in))
	}
	require.Equal(t, []Event{
		{"o-1", "c-1", 100, 1, 100},
		{"o-2", "c-2", 7, 1, 7},
		{"o-3", "c-1", 50, 2, 150},
		{"o-4", "c-1", 1, 3, 151},
	}, decodeEvents(t, rt))
	require.Equal(t, Customer{3, 151}, customerState(t, rt, "c-1"))
	require.Equal(t, Customer{1, 7}, customerState(t, rt, "c-2"))
	require.Equal(t, map[string][]byte{
		"o-1": []byte("c-1"), "o-2": []byte("c-2"), "o-3": []byte("c-1"), "o-4": []byte("c-1"),
	}, rt.state[StoreOrderIDs])
}

func TestOrderTopologySkipsDuplicates(t *testing.T) {
	t.Parallel()
	top, err := OrderTopology()
	require.NoError(t, err)
	rt := newMemRuntime()
	first := orderInput(t, 0, "c-1", order("o-1", "c-1", 100))
	require.NoError(t, rt.process(top, first))
	before := customerState(t, rt, "c-1")

	dup := *first
	dup.Offset = 1
	require.NoError(t, rt.process(top, &dup))
	// Same id, other amount: still a duplicate, the id decides.
	require.NoError(t, rt.process(top, orderInput(t, 2, "c-1", order("o-1", "c-1", 999))))

	require.Len(t, rt.out, 1)
	require.Equal(t, before, customerState(t, rt, "c-1"))
	require.Len(t, rt.state[StoreOrderIDs], 1)

	// Order ids are unique across customers: another customer's order
	// with the id is rejected (dead-lettered), not applied.
	err = rt.process(top, orderInput(t, 3, "c-2", order("o-1", "c-2", 5)))
	require.True(t, topology.IsBadRecord(err), "%v", err)
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorContains(t, err, `order_id "o-1" was applied for customer "c-1"`)
	require.Len(t, rt.out, 1)
	require.NotContains(t, rt.state[StoreCustomers], "c-2")
	require.Equal(t, []byte("c-1"), rt.state[StoreOrderIDs]["o-1"])
}

func TestOrderTopologyMalformed(t *testing.T) {
	t.Parallel()
	top, err := OrderTopology()
	require.NoError(t, err)
	o := order("o-1", "c-1", 100)
	for kind := range numMalformedKinds {
		t.Run(fmt.Sprint(kind), func(t *testing.T) {
			t.Parallel()
			rt := newMemRuntime()
			v, err := malformedValue(kind, o)
			require.NoError(t, err)
			err = rt.process(top, &topology.Input{Topic: TopicOrders, Key: []byte("c-1"), Value: v})
			require.Error(t, err)
			require.True(t, topology.IsBadRecord(err), "%v", err)
			require.ErrorIs(t, err, ErrMalformed)
			require.Empty(t, rt.out)
			require.Empty(t, rt.state)
		})
	}
}

func TestPaymentTopologyAttempts(t *testing.T) {
	t.Parallel()
	top, err := PaymentTopology()
	require.NoError(t, err)
	rt := newMemRuntime()
	event := func(offset int64, ev Event) *topology.Input {
		v, err := json.Marshal(ev)
		require.NoError(t, err)
		return &topology.Input{Topic: TopicEvents, Offset: offset, Key: []byte(ev.CustomerID), Value: v}
	}
	require.NoError(t, rt.process(top, event(0, Event{"o-1", "c-1", 100, 1, 100})))
	require.NoError(t, rt.process(top, event(1, Event{"o-2", "c-1", 5, 2, 105})))
	require.NoError(t, rt.process(top, event(2, Event{"o-1", "c-1", 100, 1, 100}))) // upstream duplicate

	var got []Payment
	for _, r := range rt.out {
		require.Equal(t, TopicPayments, r.Topic)
		require.Equal(t, "c-1", string(r.Key))
		p, err := DecodePayment(r.Value)
		require.NoError(t, err)
		got = append(got, p)
	}
	require.Equal(t, []Payment{{"o-1", "c-1", 100, 1}, {"o-2", "c-1", 5, 1}, {"o-1", "c-1", 100, 2}}, got)
	st, err := PaymentStateSerde().Decode(rt.state[StorePayments]["o-1"])
	require.NoError(t, err)
	require.Equal(t, PaymentState{Attempts: 2, AmountCents: 100}, st)

	for name, in := range map[string]*topology.Input{
		"not JSON":       {Topic: TopicEvents, Key: []byte("c-1"), Value: []byte("{")},
		"missing field":  {Topic: TopicEvents, Key: []byte("c-1"), Value: []byte(`{"order_id":"o-1","customer_id":"c-1"}`)},
		"key differs":    event(3, Event{"o-3", "c-2", 1, 1, 1}),
		"empty order id": event(4, Event{"", "c-2", 1, 1, 1}),
	} {
		if name == "key differs" {
			in.Key = []byte("c-1")
		}
		err := rt.process(top, in)
		require.True(t, topology.IsBadRecord(err), "%s: %v", name, err)
	}
	require.Len(t, rt.out, 3)
}
