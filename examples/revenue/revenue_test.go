package revenue_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/revenue"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // the driver's default start

type harness struct {
	till string // the key of the sales sell pipes
	d    *topologytest.Driver
	in   topologytest.InputTopic[string, revenue.Sale]
	out  topologytest.OutputTopic[string, revenue.Revenue]
}

func newHarness(t *testing.T, parts int32) *harness {
	topo, err := revenue.Topology("")
	require.NoError(t, err)
	d := topologytest.New(t, topo, topologytest.Options{Application: revenue.Group, Partitions: parts, Start: t0})
	return &harness{
		till: "till-1",
		d:    d,
		in:   topologytest.Input(d, revenue.TopicSales, topology.String(), topology.JSON[revenue.Sale]()),
		out:  topologytest.Output(d, revenue.TopicRevenue, topology.String(), topology.JSON[revenue.Revenue]()),
	}
}

// sell pipes a sale of product at t0+at, rung up at h.till. The Kafka
// record's timestamp is the driver's wall clock: the sale's own time must
// win.
func (h *harness) sell(product string, cents int64, at time.Duration) {
	h.in.Pipe(h.till, revenue.Sale{Product: product, AmountCents: cents, Time: t0.Add(at)})
}

// tillOn returns a till whose sales go to partition p.
func (h *harness) tillOn(t *testing.T, p int32) string {
	for i := range 1000 {
		if till := fmt.Sprintf("till-%d", i); h.d.Partition([]byte(till)) == p {
			return till
		}
	}
	t.Fatalf("no till on partition %d", p)
	return ""
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
	require.ElementsMatch(t, []revenue.Revenue{rev("apple", 0, 150, 2), rev("pear", 0, 7, 1)}, h.read())

	h.sell("pear", 3, 90*time.Second)
	h.sell("apple", 2, 3*time.Minute+5*time.Second) // closes minutes 1 and 2 in one crossing
	require.ElementsMatch(t, []revenue.Revenue{rev("apple", 1, 1, 1), rev("pear", 1, 3, 1)}, h.read())
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
	qp, bp := h.d.Partition([]byte(quiet)), h.d.Partition([]byte(busy))
	require.NotEqual(t, qp, bp)
	// Each product's sales are rung up at a till of its own partition: a
	// till's sale moves the stream time of its partition too.
	h.till = h.tillOn(t, qp)
	h.sell(quiet, 100, 20*time.Second)
	h.till = h.tillOn(t, bp)
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

	h.till = h.tillOn(t, qp)
	h.sell(quiet, 1, 59*time.Second) // closed by the wall clock: late
	require.Len(t, h.d.DeadLetters(), 1)
	h.sell(quiet, 2, 4*time.Minute) // stream time now crosses 00:01..00:04: nothing more of minute 0
	require.Empty(t, h.read())
}

// TestInvalidSaleIsDeadLettered: a sale without a product, without a time
// or with a negative amount is dead-lettered before the repartition, from
// the sales topic, and counts nowhere.
func TestInvalidSaleIsDeadLettered(t *testing.T) {
	h := newHarness(t, 2)
	h.in.Pipe("till-1", revenue.Sale{AmountCents: 1, Time: t0})
	h.in.Pipe("till-1", revenue.Sale{Product: "apple", AmountCents: 1})
	h.in.Pipe("till-1", revenue.Sale{Product: "apple", AmountCents: -1, Time: t0})
	dl := h.d.DeadLetters()
	require.Len(t, dl, 3)
	for _, r := range dl {
		require.Equal(t, revenue.TopicSales, header(r, "exactly.source.topic"))
		require.Contains(t, header(r, "exactly.error"), "invalid sale")
	}
	h.d.AdvanceWallClock(time.Hour)
	require.Empty(t, h.read())
}

// TestSalesMeetByProduct: sales of one product rung up at tills on every
// partition are re-keyed through the repartition topic into one task,
// which emits one total of them; the repartition topic is the library's,
// named after the application.
func TestSalesMeetByProduct(t *testing.T) {
	h := newHarness(t, 4)
	for p := range int32(4) {
		h.till = h.tillOn(t, p)
		h.sell("apple", int64(10+p), time.Duration(p)*time.Second)
		h.sell("pear", 1, time.Duration(p)*time.Second)
	}
	require.Empty(t, h.read())
	h.d.AdvanceWallClock(2 * time.Minute)
	got := h.read()
	require.ElementsMatch(t, []revenue.Revenue{rev("apple", 0, 10+11+12+13, 4), rev("pear", 0, 4, 1*4)}, got)
	var sales []revenue.Sale
	for p := range int32(4) {
		sales = append(sales, revenue.Sale{Product: "apple", AmountCents: int64(10 + p), Time: t0.Add(time.Duration(p) * time.Second)},
			revenue.Sale{Product: "pear", AmountCents: 1, Time: t0.Add(time.Duration(p) * time.Second)})
	}
	require.NoError(t, revenue.Check(sales, nil, got, time.Time{}))
	topo, err := revenue.Topology("")
	require.NoError(t, err)
	topo, err = topo.ForApplication(revenue.Group)
	require.NoError(t, err)
	require.Equal(t, "revenue-by-product-repartition", topo.Repartitions()[0].Topic)
}

func header(r topologytest.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
