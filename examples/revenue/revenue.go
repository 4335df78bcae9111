// Package revenue sums each product's sales per tumbling minute and emits
// a minute's total once, when the minute closes, with punctuators (the
// low-level topology API: package topology's Schedule) behind a
// repartition topic. When window operators exist, this is what a
// re-keying tumbling-window aggregation does.
//
// The input topic (sales) holds Sale records (JSON) keyed by the till that
// rang them up, as a shop's tills would write them; a sale's timestamp is
// its Time (topology.WithTimestamp), not the Kafka record's. The node
// rekey dead-letters invalid sales and sends the others, keyed by
// product, to the repartition topic by-product (created and purged by the
// library: <group>-by-product-repartition), so that each product's sales
// meet in one task. There a task keeps, per product, the open minutes with their running
// totals (store buckets) and a per-partition index of the products with
// open minutes and of the watermark: the time up to which every minute is
// closed (store open, one entry per partition).
//
// A minute closes, and its total goes to the output topic
// (revenue-per-minute: key the product, value a Revenue) and leaves the
// store, in the transaction that closes it, when either
//   - stream time (the largest sale time the partition has seen) passes
//     its end: a stream-time punctuator fires at every minute boundary;
//   - or wall-clock time passes its end plus WallClockGrace: a wall-clock
//     punctuator, every WallClockInterval, closes the minutes of a
//     partition whose sales stopped (stream time stands still there).
//
// Stream time is per task, and a task reads partition p of both topics:
// a sale rekeyed in p moves p's stream time at once, while the sales it
// overtook may still be on their way through the repartition topic. So a
// sale for a minute near its end can arrive after its product's task
// closed the minute, more often under load, kills and rebalances.
//
// Late sales: a sale for a minute that is already closed (its end at or
// before the watermark or the stream time) would change a total already
// emitted; it is dead-lettered with ErrLate, and so are sales that are not
// valid (ErrInvalid). Nothing is emitted twice and nothing counted is
// lost: every sale is in exactly one emitted total or in the dead-letter
// topic. Check verifies this of a run's committed output.
package revenue

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// Topic, group and store names, before any topic prefix.
const (
	TopicSales      = "sales"              // input: till -> Sale (JSON)
	TopicRevenue    = "revenue-per-minute" // output: product -> Revenue (JSON)
	TopicDeadLetter = "revenue-dlq"        // late or invalid sales
	Group           = "revenue"            // consumer group and application id
	StoreBuckets    = "buckets"            // product -> its open minutes
	StoreOpen       = "open"               // "" -> Open, per partition
	ByProduct       = "by-product"         // the repartition: product -> Sale
)

// Window is the length of a tumbling window; WallClockInterval how often
// the wall-clock punctuator runs and WallClockGrace how long after a
// minute's end (on the wall clock) it closes the minute when stream time
// has not.
const (
	Window            = time.Minute
	WallClockInterval = 10 * time.Second
	WallClockGrace    = 10 * time.Second
)

// ErrLate and ErrInvalid classify dead-lettered sales.
var (
	ErrLate    = errors.New("revenue: sale for a minute already closed")
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

// Bucket is an open minute's running total.
type Bucket struct {
	Cents int64 `json:"cents"`
	Sales int64 `json:"sales"`
}

// Open is a partition's index: the products with open minutes, sorted,
// and the watermark, up to which every minute is closed.
type Open struct {
	Products []string  `json:"products"`
	Closed   time.Time `json:"closed"`
}

// app holds the topology's handles.
type app struct {
	buckets topology.StoreRef[string, map[int64]Bucket] // minute start (Unix seconds) -> bucket
	open    topology.StoreRef[string, Open]
	out     topology.SinkRef[string, Revenue]
}

// Topology returns the topology with every topic name prefixed by prefix.
func Topology(prefix string) (*topology.Topology, error) {
	b := topology.NewBuilder()
	src := topology.Source(b, "sales", prefix+TopicSales, topology.String(), topology.JSON[Sale](),
		topology.WithTimestamp(func(_ string, s Sale, _ time.Time) time.Time { return s.Time }))
	byProduct := topology.Repartition(b, ByProduct, topology.String(), topology.JSON[Sale](), topology.Parents("rekey"))
	topology.Node(b, "rekey", func(c *topology.Call, r topology.Record[string, Sale]) error {
		if err := r.Value.Validate(); err != nil {
			return err
		}
		return byProduct.Send(c, r.Value.Product, r.Value)
	}, topology.Parents(src.Name()))
	a := &app{
		buckets: topology.Store(b, StoreBuckets, topology.String(), topology.JSON[map[int64]Bucket]()),
		open:    topology.Store(b, StoreOpen, topology.String(), topology.JSON[Open]()),
		out:     topology.Sink(b, "out", prefix+TopicRevenue, topology.String(), topology.JSON[Revenue](), topology.Parents("close-stream", "close-wall")),
	}
	stores := topology.Stores(StoreBuckets, StoreOpen)
	topology.Node(b, "add", a.add, topology.Parents(byProduct.Name()), stores)
	topology.Schedule(b, "close-stream", Window, topology.StreamTime, a.close, stores)
	topology.Schedule(b, "close-wall", WallClockInterval, topology.WallClock, func(c *topology.Call, at time.Time) error {
		return a.close(c, at.Add(-WallClockGrace))
	}, stores)
	t, err := b.Build()
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

// add adds a sale, read from the repartition topic, to its product's
// minute, opening the minute if needed.
func (a *app) add(c *topology.Call, r topology.Record[string, Sale]) error {
	s := r.Value
	if s.Product != r.Key {
		return fmt.Errorf("%w: product %q keyed %q (a product's sales must share a partition)", ErrInvalid, s.Product, r.Key)
	}
	o, _, err := a.open.Get(c, "")
	if err != nil {
		return err
	}
	start := s.Time.Truncate(Window)
	if end := start.Add(Window); !end.After(o.Closed) || !end.After(c.StreamTime()) {
		return fmt.Errorf("%w: %s, minute %s", ErrLate, s.Product, start.UTC().Format(time.RFC3339))
	}
	bs, _, err := a.buckets.Get(c, s.Product)
	if err != nil {
		return err
	}
	if bs == nil {
		bs = make(map[int64]Bucket)
	}
	bk := bs[start.Unix()]
	bk.Cents += s.AmountCents
	bk.Sales++
	bs[start.Unix()] = bk
	if err := a.buckets.Put(c, s.Product, bs); err != nil {
		return err
	}
	if i, found := slices.BinarySearch(o.Products, s.Product); !found {
		o.Products = slices.Insert(o.Products, i, s.Product)
		return a.open.Put(c, "", o)
	}
	return nil
}

// close emits and deletes every open minute of the partition that ends at
// or before upTo, and moves the watermark to upTo.
func (a *app) close(c *topology.Call, upTo time.Time) error {
	o, _, err := a.open.Get(c, "")
	if err != nil {
		return err
	}
	o.Closed = later(o.Closed, upTo)
	var still []string
	for _, p := range o.Products {
		bs, _, err := a.buckets.Get(c, p)
		if err != nil {
			return err
		}
		if err := a.emit(c, p, bs, upTo); err != nil {
			return err
		}
		if len(bs) > 0 {
			still = append(still, p)
			err = a.buckets.Put(c, p, bs)
		} else {
			err = a.buckets.Delete(c, p)
		}
		if err != nil {
			return err
		}
	}
	o.Products = still
	return a.open.Put(c, "", o)
}

// emit sends, in time order, the totals of p's minutes ending at or before
// upTo and removes them from bs.
func (a *app) emit(c *topology.Call, p string, bs map[int64]Bucket, upTo time.Time) error {
	for _, m := range slices.SortedFunc(maps.Keys(bs), cmp.Compare) {
		start := time.Unix(m, 0).UTC()
		if start.Add(Window).After(upTo) {
			break
		}
		bk := bs[m]
		if err := a.out.Send(c, p, Revenue{Product: p, Minute: start, RevenueCents: bk.Cents, Sales: bk.Sales}); err != nil {
			return err
		}
		delete(bs, m)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
