package servicesdemo

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/examples/orderservice"
)

// The checks find every kind of violation the demo exists to catch: a
// lost, a duplicated, a changed and an invented order, in a topic and in
// the orders table.
func TestChecksFindViolations(t *testing.T) {
	a := orders.Order{OrderID: "a", CustomerID: "c1", AmountCents: 5}
	b := orders.Order{OrderID: "b", CustomerID: "c2", AmountCents: 7}
	d := &demo{accepted: map[string]orders.Order{"a": a, "b": b}}
	same := func(x, y orders.Order) bool { return x.AmountCents == y.AmountCents }

	require.Empty(t, d.checkOnce(map[string][]orders.Order{"a": {a}, "b": {b}}, same))
	require.ElementsMatch(t, []string{"order a: 2 times", "order b: missing"},
		d.checkOnce(map[string][]orders.Order{"a": {a, a}}, same))
	changed := b
	changed.AmountCents = 8
	require.Len(t, d.checkOnce(map[string][]orders.Order{"a": {a}, "b": {changed}}, same), 1)
	require.Equal(t, []string{"order x: 1 records, never accepted"},
		d.checkOnce(map[string][]orders.Order{"a": {a}, "b": {b}, "x": {a}}, same))

	require.Empty(t, d.checkSaved(map[string]orderservice.Saved{"a": {Order: a}, "b": {Order: b}}))
	require.ElementsMatch(t, []string{"order b accepted but not saved", "order x saved but never accepted"},
		d.checkSaved(map[string]orderservice.Saved{"a": {Order: a}, "x": {Order: b}}))
}
