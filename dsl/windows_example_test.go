package dsl_test

import (
	"fmt"
	"time"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
)

type sale struct {
	Product     string    `json:"product"`
	AmountCents int64     `json:"amount_cents"`
	Time        time.Time `json:"time"`
}

// Revenue per product per tumbling minute, each minute emitted once when
// it closes (or 10 s of wall clock after, on a quiet partition); a sale
// for a closed minute goes to the dead-letter topic with dsl.ErrLate.
// This is what examples/revenue does by hand.
func ExampleWindowedBy() {
	b := topology.NewBuilder()
	topology.Source(b, "sales", "sales", topology.String(), topology.JSON[sale](),
		topology.WithTimestamp(func(_ string, s sale, _ time.Time) time.Time { return s.Time }))
	d := dsl.New(b)
	sales, _ := dsl.FromNode[string, sale](d, "sales")
	byProduct := dsl.GroupBy(sales, func(_ string, s sale) string { return s.Product },
		topology.String(), topology.JSON[sale](), dsl.Named("by-product"))
	minutes := dsl.WindowedBy(byProduct, dsl.Tumbling(time.Minute), dsl.EmitFinal(), dsl.CloseOnWallClock(10*time.Second))
	dsl.WindowedAggregate(minutes, func() int64 { return 0 },
		func(_ string, s sale, cents int64) int64 { return cents + s.AmountCents },
		topology.Int64(), dsl.Named("revenue")).
		ToStream().To("revenue-per-minute", topology.WindowedSerde(topology.String()), topology.Int64())
	top, err := d.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(top.Punctuators()[0].Name, top.Punctuators()[0].Type)
	// Output: revenue-wall-close wall-clock
}
