// Package revenue sums each product's sales per tumbling minute and emits
// a minute's total once, when the minute closes: a re-keying tumbling-window
// aggregation with the DSL's window operators (package dsl: GroupBy,
// WindowedBy, Tumbling, EmitFinal, CloseOnWallClock).
//
// The input topic (sales) holds Sale records (JSON) keyed by the till that
// rang them up, as a shop's tills would write them; a sale's timestamp is
// its Time (topology.WithTimestamp), not the Kafka record's. The node
// validate dead-letters invalid sales (ErrInvalid); the others are grouped
// by product through the repartition topic by-product (created and purged
// by the library: <group>-by-product-repartition), so that each product's
// sales meet in one task, and summed per product and minute in the window
// store buckets.
//
// A minute closes, and its total goes to the output topic
// (revenue-per-minute: key the product, value a Revenue) and leaves the
// store, in the transaction that closes it, when either
//   - stream time (the largest sale time the partition has seen) passes
//     its end;
//   - or the wall clock passes its end plus WallClockGrace: a partition
//     whose sales stopped still emits its last minutes.
//
// Stream time is per task and sub-topology: the sales read from the
// sales topic do not move the per-product minutes' stream time, only the
// re-keyed sales read back from the repartition topic do. A sale can
// still come late: sales of one product from several tills reach its
// task through the repartition topic in the order their transactions
// committed, not in sale time order, so a sale near the end of a minute
// can arrive after a later sale of its product closed the minute, more
// often under load, kills and rebalances.
//
// Late sales: a sale for a minute that is already closed would change a
// total already emitted; it is dead-lettered with ErrLate (dsl.ErrLate).
// Nothing is emitted twice and nothing counted is lost: every sale is in
// exactly one emitted total or in the dead-letter topic. Check verifies
// this of a run's committed output.
package revenue

import (
	"errors"
	"fmt"
	"time"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
)

// Topic, group and store names, before any topic prefix.
const (
	TopicSales      = "sales"              // input: till -> Sale (JSON)
	TopicRevenue    = "revenue-per-minute" // output: product -> Revenue (JSON)
	TopicDeadLetter = "revenue-dlq"        // late or invalid sales
	Group           = "revenue"            // consumer group and application id
	StoreBuckets    = "buckets"            // window store: product and minute -> Bucket
	ByProduct       = "by-product"         // the repartition: product -> Sale
)

// Window is the length of a tumbling window; WallClockGrace how long
// after a minute's end (on the wall clock) it closes when stream time has
// not, and WallClockInterval a bound on how much later than that it
// closes (the wall-clock check runs every second).
const (
	Window            = time.Minute
	WallClockInterval = 10 * time.Second
	WallClockGrace    = 10 * time.Second
)

// ErrLate and ErrInvalid classify dead-lettered sales.
var (
	ErrLate    = dsl.ErrLate
	ErrInvalid = errors.New("revenue: invalid sale")
)

// Sale is an input record's value.
type Sale struct {
	Product     string    `json:"product"`
	AmountCents int64     `json:"amount_cents"`
	Time        time.Time `json:"time"`
}

// Revenue is an output record's value: a product's sales in the minute
// starting at Minute.
type Revenue struct {
	Product      string    `json:"product"`
	Minute       time.Time `json:"minute"`
	RevenueCents int64     `json:"revenue_cents"`
	Sales        int64     `json:"sales"`
}

// Bucket is a minute's running total.
type Bucket struct {
	Cents int64 `json:"cents"`
	Sales int64 `json:"sales"`
}

// Topology returns the topology with every topic name prefixed by prefix.
func Topology(prefix string) (*topology.Topology, error) {
	d := dsl.New(nil)
	sales := dsl.StreamFrom(d, "sales", prefix+TopicSales, topology.String(), topology.JSON[Sale](),
		topology.WithTimestamp(func(_ string, s Sale, _ time.Time) time.Time { return s.Time }))
	valid, send := dsl.FromNode[string, Sale](d, "validate")
	dsl.Process(sales, "validate", func(c *topology.Call, r topology.Record[string, Sale]) error {
		if err := r.Value.Validate(); err != nil {
			return err // dead-lettered
		}
		return send.SendRecord(c, r)
	})
	byProduct := dsl.GroupBy(valid, func(_ string, s Sale) string { return s.Product }, topology.String(), topology.JSON[Sale](), dsl.Named(ByProduct))
	minutes := dsl.WindowedBy(byProduct, dsl.Tumbling(Window), dsl.EmitFinal(), dsl.CloseOnWallClock(WallClockGrace))
	totals := dsl.WindowedAggregate(minutes, func() Bucket { return Bucket{} }, func(_ string, s Sale, b Bucket) Bucket {
		return Bucket{Cents: b.Cents + s.AmountCents, Sales: b.Sales + 1}
	}, topology.JSON[Bucket](), dsl.Named(StoreBuckets))
	dsl.Map(totals.ToStream(), func(w topology.Windowed[string], b Bucket) (string, Revenue) {
		return w.Key, Revenue{Product: w.Key, Minute: w.Window.Start.UTC(), RevenueCents: b.Cents, Sales: b.Sales}
	}).To(prefix+TopicRevenue, topology.String(), topology.JSON[Revenue]())
	t, err := d.Build()
	if err != nil {
		return nil, fmt.Errorf("building the revenue topology: %w", err)
	}
	return t, nil
}

// Validate returns an error wrapping ErrInvalid if s cannot be counted.
func (s Sale) Validate() error {
	switch {
	case s.Product == "":
		return fmt.Errorf("%w: no product", ErrInvalid)
	case s.AmountCents < 0 || s.Time.IsZero():
		return fmt.Errorf("%w: amount %d at %s", ErrInvalid, s.AmountCents, s.Time)
	}
	return nil
}
