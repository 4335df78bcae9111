// Package enrich enriches each order with its customer's profile as of the
// order's time: a stream-table join with the DSL (dsl.StreamFrom,
// dsl.TableFrom, dsl.LeftJoin), run exactly once. Its command,
// examples/enrich/cmd/enrich, is a few lines on package app.
//
// The input topic orders holds Order records (JSON) keyed by customer id;
// the compacted topic customers holds each customer's profile (a string),
// keyed alike, one record per version. The two topics must be
// co-partitioned: the same partition count, keyed with the default
// partitioner. The table customers keeps each customer's latest profile in
// the store customers (changelog <group>-customers-changelog); each order
// is joined with it and written to orders-enriched, key the customer id,
// value an Enriched: the order and the profile, or NoProfile for a
// customer with none yet. A customer update writes nothing by itself. An
// order that is not valid JSON goes to the dead-letter topic.
//
// What it shows: the processor reads the two topics of a task in
// timestamp order (processor.TaskIdle), so an order meets the profile as
// of its own timestamp even on a cold start, when a backlog of both topics
// is read at once and the orders were written before the profiles; and
// that holds across crashes and restarts. Expected computes, from the
// records produced, the profile each order must meet; Check verifies a
// run's committed output against it.
package enrich

import (
	"fmt"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
)

// Topic, group and store names, before any topic prefix.
const (
	TopicOrders     = "orders"          // input: customer id -> Order (JSON)
	TopicCustomers  = "customers"       // input, compacted: customer id -> profile
	TopicEnriched   = "orders-enriched" // output: customer id -> Enriched (JSON)
	TopicDeadLetter = "enrich-dlq"      // orders that are not JSON
	Group           = "enrich"          // consumer group and application id
	StoreCustomers  = "customers"       // customer id -> latest profile
)

// NoProfile is the profile of an order whose customer has none yet.
const NoProfile = "none"

// Order is an orders record's value.
type Order struct {
	ID          string `json:"id"`
	AmountCents int64  `json:"amount_cents"`
}

// Enriched is an output record's value: the order and its customer's
// profile when the order was placed.
type Enriched struct {
	Order
	Profile string `json:"profile"`
}

// Topology returns the topology with every topic name prefixed by prefix.
func Topology(prefix string) (*topology.Topology, error) {
	d := dsl.New(nil, dsl.RequireNames())
	orders := dsl.StreamFrom(d, "orders", prefix+TopicOrders, topology.String(), topology.JSON[Order]())
	customers := dsl.TableFrom(d, StoreCustomers, prefix+TopicCustomers, topology.String(), topology.String())
	dsl.LeftJoin(orders, customers, join, dsl.Named("enrich")).
		To(prefix+TopicEnriched, topology.String(), topology.JSON[Enriched](), dsl.Named("out"))
	t, err := d.Build()
	if err != nil {
		return nil, fmt.Errorf("building the enrich topology: %w", err)
	}
	return t, nil
}

func join(_ string, o Order, profile string, found bool) Enriched {
	if !found {
		profile = NoProfile
	}
	return Enriched{Order: o, Profile: profile}
}
