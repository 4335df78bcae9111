// Command exactly runs the reference order pipeline of the exactly
// stream processor (examples/orders) and the project's own instruments.
// It is built on package app, which gives it these commands:
//
//	exactly run      run one instance of the order (or payment) service
//	exactly reset    wipe state and changelogs, rebuild from the committed offsets, run
//	exactly topics   create or check the pipeline's topics
//	exactly doctor   check the cluster, the groups and open transactions
//
// and adds its own:
//
//	exactly produce  write orders to the orders topic
//	exactly verify   check the pipeline's output (E1-E5) with read_committed
//	exactly demo     all of the above on an embedded three-broker cluster
//	exactly bench    measure the pipeline (see BENCHMARKS.md)
//	exactly chaos    randomized soak with crashes and faults, then verify
//	exactly mirror   copy topics between two clusters exactly once, and its subcommands:
//	  mirror verify  compare the copy with the source record by record
//	  mirror doctor  check the mirror's lag, progress, topics and open transactions
//	  mirror translate  translate a consumer group's offsets to the target
//	exactly relay    relay an outbox table to Kafka exactly once
//	  relay schema   print the outbox table's SQL
//	exactly payments the payment service on a SQL database through the transactional sink
//	  payments schema  print its tables' SQL
//	exactly demo-services  the order service, relay, stream processor and payment
//	                 service end to end under SIGKILLs, checked from the API to the payments
//
// (`exactly mirror-verify`, the old name of `mirror verify`, still runs it
// and is not listed.)
//
// Every flag can also be set through an environment variable named
// EXACTLY_<FLAG> (upper case, dashes as underscores); a flag given on the
// command line wins. `exactly help` lists the commands and the exit
// statuses (see package app): 0 ok, 1 failure, 2 usage, 3 violations,
// 4 and 5 the doctor's warnings and critical findings.
package main

import (
	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/topology"
)

func main() { app.Main(config()) }

// config is the exactly program: the order pipeline's two services and
// the project's commands.
func config() app.Config {
	return app.Config{
		Name:    "exactly",
		Summary: "the reference order pipeline of the exactly stream processor, and its tools",
		Services: []app.Service{
			{Name: "order", Topology: orderTopology, Group: orders.DefaultOrderGroup, DeadLetterTopic: orders.TopicDLQ},
			{Name: "payment", Topology: paymentTopology, Group: orders.DefaultPaymentGroup, DeadLetterTopic: orders.TopicPaymentsDLQ},
		},
		Commands: []app.Command{produceCommand, verifyCommand, demoCommand, benchCommand, chaosCommand, mirrorCommand, mirrorVerifyCommand, relayCommand, paymentsCommand, demoServicesCommand},
	}
}

func orderTopology(prefix string) (*topology.Topology, error) {
	return orders.OrderTopologyFor(orders.TopicsWithPrefix(prefix))
}

func paymentTopology(prefix string) (*topology.Topology, error) {
	return orders.PaymentTopologyFor(orders.TopicsWithPrefix(prefix))
}
