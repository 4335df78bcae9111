// Command revenue runs the per-product revenue per minute (package
// revenue: a repartition by product, then stream-time and wall-clock
// punctuators) with the application kit: `revenue run`, `revenue topics
// create`, `revenue doctor`, `revenue reset`, `revenue help`. The chaos
// soak's revenue mode and TestMetamorphicRevenue run it as child
// processes.
package main

import (
	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/examples/revenue"
)

func main() {
	app.Main(app.Config{
		Name:            "revenue",
		Summary:         "each product's sales per tumbling minute, re-keyed by product through a repartition topic, emitted once when the minute closes",
		Topology:        revenue.Topology,
		Group:           revenue.Group,
		DeadLetterTopic: revenue.TopicDeadLetter,
	})
}
