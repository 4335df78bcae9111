// Command enrich runs the orders enrichment (package enrich: a
// stream-table join of orders with customers' profiles as of each order's
// time) with the application kit: `enrich run`, `enrich topics create`,
// `enrich doctor`, `enrich reset`, `enrich help`. TestEnrich* in
// integration runs it as child processes.
package main

import (
	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/examples/enrich"
)

func main() {
	app.Main(app.Config{
		Name:            "enrich",
		Summary:         "enrich each order with its customer's profile as of the order's time (a stream-table join), exactly once",
		Topology:        enrich.Topology,
		Group:           enrich.Group,
		DeadLetterTopic: enrich.TopicDeadLetter,
	})
}
