package enrich_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/enrich"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// TestProfileAsOfOrder pipes orders and profile versions of two customers
// in timestamp order: each order is written once, with the profile its
// customer had then ("none" before the first), and a profile update
// writes nothing. Expected agrees with the output.
func TestProfileAsOfOrder(t *testing.T) {
	topo, err := enrich.Topology("")
	require.NoError(t, err)
	d := topologytest.New(t, topo, topologytest.Options{Application: enrich.Group, Partitions: 4})
	orders := topologytest.Input(d, enrich.TopicOrders, topology.String(), topology.JSON[enrich.Order]())
	customers := topologytest.Input(d, enrich.TopicCustomers, topology.String(), topology.String())

	versions := []enrich.Version{
		{Customer: "ann", Profile: "Ann, Paris", Time: at(2)},
		{Customer: "bob", Profile: "Bob, Oslo", Time: at(4)},
		{Customer: "ann", Profile: "Ann, Lyon", Time: at(6)},
	}
	placed := []enrich.Placed{
		{Customer: "ann", Order: enrich.Order{ID: "o1", AmountCents: 100}, Time: at(1)},
		{Customer: "ann", Order: enrich.Order{ID: "o2", AmountCents: 200}, Time: at(3)},
		{Customer: "bob", Order: enrich.Order{ID: "o3", AmountCents: 300}, Time: at(5)},
		{Customer: "ann", Order: enrich.Order{ID: "o4", AmountCents: 400}, Time: at(7)},
		{Customer: "cy", Order: enrich.Order{ID: "o5", AmountCents: 500}, Time: at(8)},
	}
	// In timestamp order, as the processor reads a task's two topics.
	vi := 0
	for _, o := range placed {
		for ; vi < len(versions) && versions[vi].Time.Before(o.Time); vi++ {
			v := versions[vi]
			customers.PipeRecord(topology.Record[string, string]{Key: v.Customer, Value: v.Profile, Timestamp: v.Time})
		}
		orders.PipeRecord(topology.Record[string, enrich.Order]{Key: o.Customer, Value: o.Order, Timestamp: o.Time})
	}

	out := topologytest.Output(d, enrich.TopicEnriched, topology.String(), topology.JSON[enrich.Enriched]()).ReadAll()
	got := make([]enrich.Output, 0, len(out))
	profiles := map[string]string{}
	for i, r := range out {
		require.Equal(t, placed[i].Time, r.Timestamp, "an output keeps its order's timestamp")
		got = append(got, enrich.Output{Customer: r.Key, Enriched: r.Value})
		profiles[r.Value.ID] = r.Value.Profile
	}
	require.Equal(t, map[string]string{
		"o1": enrich.NoProfile, "o2": "Ann, Paris", "o3": "Bob, Oslo", "o4": "Ann, Lyon", "o5": enrich.NoProfile,
	}, profiles)
	require.Len(t, out, len(placed), "one output per order, none per profile update")
	require.Equal(t, enrich.Enriched{Order: enrich.Order{ID: "o4", AmountCents: 400}, Profile: "Ann, Lyon"}, out[3].Value)
	require.Equal(t, "ann", out[3].Key)
	require.NoError(t, enrich.Check(versions, placed, got))
	require.Empty(t, d.DeadLetters())
}

// TestBadOrderIsDeadLettered: an order that is not JSON goes to the
// dead-letter topic unchanged and enriches nothing.
func TestBadOrderIsDeadLettered(t *testing.T) {
	topo, err := enrich.Topology("")
	require.NoError(t, err)
	d := topologytest.New(t, topo, topologytest.Options{Application: enrich.Group})
	d.PipeRaw(enrich.TopicOrders, topologytest.Record{Key: []byte("ann"), Value: []byte("{not json"), Timestamp: at(1)})
	dl := d.DeadLetters()
	require.Len(t, dl, 1)
	require.Equal(t, "{not json", string(dl[0].Value))
	require.Empty(t, d.Produced(enrich.TopicEnriched))
}

// TestTopologyNames pins the names a deployed application depends on:
// the topics and the store (so its changelog).
func TestTopologyNames(t *testing.T) {
	topo, err := enrich.Topology("p-")
	require.NoError(t, err)
	topo, err = topo.ForApplication("p-" + enrich.Group)
	require.NoError(t, err)
	require.Equal(t, []string{enrich.StoreCustomers}, topo.StoreNames())
	require.Empty(t, topo.Repartitions(), "the join needs no repartition: orders are keyed by customer")
}

func TestExpected(t *testing.T) {
	versions := []enrich.Version{
		{Customer: "ann", Profile: "v2", Time: at(5)},
		{Customer: "ann", Profile: "v1", Time: at(2)}, // out of order: Expected sorts
		{Customer: "bob", Profile: "b", Time: at(3)},
	}
	placed := []enrich.Placed{
		{Customer: "ann", Order: enrich.Order{ID: "before"}, Time: at(1)},
		{Customer: "ann", Order: enrich.Order{ID: "at-v1"}, Time: at(2)}, // at or before: v1
		{Customer: "ann", Order: enrich.Order{ID: "between"}, Time: at(4)},
		{Customer: "ann", Order: enrich.Order{ID: "after"}, Time: at(9)},
		{Customer: "bob", Order: enrich.Order{ID: "bob"}, Time: at(9)},
		{Customer: "cy", Order: enrich.Order{ID: "cy"}, Time: at(9)},
	}
	require.Equal(t, map[string]string{
		"before": enrich.NoProfile, "at-v1": "v1", "between": "v1", "after": "v2", "bob": "b", "cy": enrich.NoProfile,
	}, enrich.Expected(versions, placed))
}

// TestCheckFindsViolations: a wrong profile, a duplicate, a lost order,
// an unknown order and a changed order are each reported, with counts.
func TestCheckFindsViolations(t *testing.T) {
	versions := []enrich.Version{{Customer: "ann", Profile: "v1", Time: at(2)}}
	placed := []enrich.Placed{
		{Customer: "ann", Order: enrich.Order{ID: "o1", AmountCents: 1}, Time: at(1)},
		{Customer: "ann", Order: enrich.Order{ID: "o2", AmountCents: 2}, Time: at(3)},
		{Customer: "ann", Order: enrich.Order{ID: "o3", AmountCents: 3}, Time: at(4)},
	}
	out := func(id string, cents int64, profile string) enrich.Output {
		return enrich.Output{Customer: "ann", Enriched: enrich.Enriched{Order: enrich.Order{ID: id, AmountCents: cents}, Profile: profile}}
	}
	good := []enrich.Output{out("o1", 1, "none"), out("o2", 2, "v1"), out("o3", 3, "v1")}
	require.NoError(t, enrich.Check(versions, placed, good))

	err := enrich.Check(versions, placed, []enrich.Output{
		out("o1", 1, "v1"),  // the profile as of the end, not of the order
		out("o2", 2, "v1"),  //
		out("o2", 2, "v1"),  // twice
		out("o9", 9, "v1"),  // never produced
		out("o3", 30, "v1"), // changed
	})
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, "1 of 3 orders with the wrong profile, 1 enriched twice, 0 missing, 1 unknown")
	require.Contains(t, msg, `order "o1" of ann`)
	require.Contains(t, msg, `order "o2": enriched twice`)
	require.Contains(t, msg, `order "o9": in the output, never produced`)
	require.Contains(t, msg, `order "o3": written as`)

	err = enrich.Check(versions, placed, good[:2])
	require.ErrorContains(t, err, `order "o3": not in the output (lost)`)
	require.ErrorContains(t, err, "1 missing")
}

// TestGenerate: the data has no order at a version's timestamp, orders
// before the first profile, and orders and versions in timestamp order;
// Records keys and stamps them as given.
func TestGenerate(t *testing.T) {
	versions, placed := enrich.Generate(7, t0, 5, 4, 500)
	require.Len(t, versions, 20)
	require.Len(t, placed, 500)
	stamps := map[time.Time]bool{}
	for i, v := range versions {
		stamps[v.Time] = true
		if i > 0 {
			require.True(t, versions[i-1].Time.Before(v.Time))
		}
	}
	want := enrich.Expected(versions, placed)
	ids := map[string]bool{}
	var none int
	for i, o := range placed {
		require.False(t, stamps[o.Time], "order %s at a version's timestamp", o.Order.ID)
		require.False(t, ids[o.Order.ID])
		ids[o.Order.ID] = true
		if i > 0 {
			require.False(t, o.Time.Before(placed[i-1].Time))
		}
		if want[o.Order.ID] == enrich.NoProfile {
			none++
		}
	}
	require.Positive(t, none, "some orders come before their customer's first profile")
	require.Less(t, none, len(placed)/2)

	cs, os := enrich.Records("p-", versions, placed)
	require.Len(t, cs, len(versions))
	require.Len(t, os, len(placed))
	require.Equal(t, "p-"+enrich.TopicCustomers, cs[0].Topic)
	require.Equal(t, versions[0].Time, cs[0].Timestamp)
	require.Equal(t, "p-"+enrich.TopicOrders, os[0].Topic)
	require.Equal(t, placed[0].Customer, string(os[0].Key))
	require.True(t, strings.HasPrefix(string(os[0].Value), `{"id":"`+placed[0].Order.ID+`"`))
}
