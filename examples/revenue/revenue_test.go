package revenue_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/revenue"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // the driver's default start

type harness struct {
	d   *topologytest.Driver
	in  topologytest.InputTopic[string, revenue.Sale]
	out topologytest.OutputTopic[string, revenue.Revenue]
}

func newHarness(t *testing.T, parts int32) *harness {
	topo, err := revenue.Topology("")
	require.NoError(t, err)
	d := topologytest.New(t, topo, topologytest.Options{Application: revenue.Group, Partitions: parts, Start: t0})
	return &harness{
		d:   d,
		in:  topologytest.Input(d, revenue.TopicSales, topology.String(), topology.JSON[revenue.Sale]()),
		out: topologytest.Output(d, revenue.TopicRevenue, topology.String(), topology.JSON[revenue.Revenue]()),
	}
}

// sell pipes a sale of product at t0+at. The Kafka record's timestamp is
// the driver's wall clock: the sale's own time must win.
func (h *harness) sell(product string, cents int64, at time.Duration) {
	h.in.Pipe(product, revenue.Sale{Product: product, AmountCents: cents, Time: t0.Add(at)})
}

func (h *harness) read() []revenue.Revenue {
	var out []revenue.Revenue
	for _, r := range h.out.ReadAll() {
		out = append(out, r.Value)
	}
	return out
}

func rev(product string, minute int, cents, sales int64) revenue.Revenue {
	return revenue.Revenue{Product: product, Minute: t0.Add(time.Duration(minute) * time.Minute), RevenueCents: cents, Sales: sales}
}

// TestEmitsOncePerClosedMinute: nothing is emitted while a minute is open;
// when stream time passes its end, each product's total of it is emitted
// once, and never again as stream time moves on.
func TestEmitsOncePerClosedMinute(t *testing.T) {
	h := newHarness(t, 1)
	h.sell("apple", 100, 10*time.Second)
	h.sell("apple", 50, 40*time.Second)
	h.sell("pear", 7, 50*time.Second)
	require.Empty(t, h.read(), "minute 0 is still open")

	h.sell("apple", 1, 65*time.Second) // stream time passes 00:01
	require.Equal(t, []revenue.Revenue{rev("apple", 0, 150, 2), rev("pear", 0, 7, 1)}, h.read())

	h.sell("pear", 3, 90*time.Second)
	h.sell("apple", 2, 3*time.Minute+5*time.Second) // closes minutes 1 and 2 in one crossing
	require.Equal(t, []revenue.Revenue{rev("apple", 1, 1, 1), rev("pear", 1, 3, 1)}, h.read())
	h.sell("apple", 4, 10*time.Minute)
	require.Equal(t, []revenue.Revenue{rev("apple", 3, 2, 1)}, h.read())
	require.Empty(t, h.d.DeadLetters())
}

// TestLateSaleIsDeadLettered: a sale out of order within an open minute
// counts; a sale for a closed minute (its end at or before stream time, as
// in Kafka Streams with no grace) is dead-lettered, since its total may be
// out already, and changes nothing.
func TestLateSaleIsDeadLettered(t *testing.T) {
	h := newHarness(t, 1)
	h.sell("apple", 100, 70*time.Second)
	h.sell("apple", 20, 30*time.Second) // minute 0 ended before stream time 00:01:10: late
	h.sell("apple", 5, 65*time.Second)  // out of order, but minute 1 is open
	h.sell("apple", 1, 2*time.Minute)   // closes minute 1
	require.Equal(t, []revenue.Revenue{rev("apple", 1, 105, 2)}, h.read())

	h.sell("apple", 999, 119*time.Second) // minute 1: emitted, so late
	dl := h.d.DeadLetters()
	require.Len(t, dl, 2)
	require.Contains(t, string(dl[0].Value), `"amount_cents":20`)
	require.Contains(t, string(dl[1].Value), `"amount_cents":999`)
	h.sell("apple", 1, 3*time.Minute)
	require.Equal(t, []revenue.Revenue{rev("apple", 2, 1, 1)}, h.read(), "the late sales are in no total")
}

// TestQuietPartitionEmitsOnWallClock: a partition whose sales stopped has
// no stream time to close its minute; the wall-clock punctuator closes it
// once the wall clock passes the minute's end plus the grace, exactly once,
// while a busy partition's minutes close on stream time.
func TestQuietPartitionEmitsOnWallClock(t *testing.T) {
	h := newHarness(t, 4)
	quiet, busy := "apple", "pear"
	require.NotEqual(t, h.d.Partition([]byte(quiet)), h.d.Partition([]byte(busy)))
	h.sell(quiet, 100, 20*time.Second)
	h.sell(busy, 7, 30*time.Second)
	h.sell(busy, 1, 70*time.Second)
	require.Equal(t, []revenue.Revenue{rev(busy, 0, 7, 1)}, h.read(), "only the busy partition's stream time passed 00:01")

	var at []time.Duration // wall-clock times at which the quiet minute came out
	for h.d.WallClock().Before(t0.Add(3 * time.Minute)) {
		h.d.AdvanceWallClock(5 * time.Second)
		for _, r := range h.read() {
			if r.Product == busy {
				continue // its minute 1 closes on the wall clock too
			}
			require.Equal(t, rev(quiet, 0, 100, 1), r)
			at = append(at, h.d.WallClock().Sub(t0))
		}
	}
	require.Len(t, at, 1, "the quiet minute is emitted exactly once")
	require.GreaterOrEqual(t, at[0], time.Minute+revenue.WallClockGrace)
	require.LessOrEqual(t, at[0], time.Minute+revenue.WallClockGrace+revenue.WallClockInterval)

	h.sell(quiet, 1, 59*time.Second) // closed by the wall clock: late
	require.Len(t, h.d.DeadLetters(), 1)
	h.sell(quiet, 2, 4*time.Minute) // stream time now crosses 00:01..00:04: nothing more of minute 0
	require.Empty(t, h.read())
}

// TestInvalidSaleIsDeadLettered: a sale keyed by another product (which
// would split a product's minute over partitions) or without a time is
// dead-lettered.
func TestInvalidSaleIsDeadLettered(t *testing.T) {
	h := newHarness(t, 2)
	h.in.Pipe("apple", revenue.Sale{Product: "pear", AmountCents: 1, Time: t0})
	h.in.Pipe("apple", revenue.Sale{Product: "apple", AmountCents: 1})
	require.Len(t, h.d.DeadLetters(), 2)
	h.d.AdvanceWallClock(time.Hour)
	require.Empty(t, h.read())
}
