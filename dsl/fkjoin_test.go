package dsl_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// pstr encodes a *string as its bytes, as str encodes a string: a right
// table keyed by *string reads a topic keyed by plain strings, and a nil
// foreign key is expressible. It never sees a nil pointer (the join does
// not encode nil keys).
var pstr topology.Serde[*string] = topology.SerdeFuncs[*string]{
	EncodeFunc: func(p *string) ([]byte, error) { return []byte(*p), nil },
	DecodeFunc: func(b []byte) (*string, error) { s := string(b); return &s, nil },
}

// orderCustomer is the foreign key of an order "<customer>/<item>"; an
// order with no customer ("/<item>") has none.
func orderCustomer(_ string, v string) *string {
	c, _, _ := strings.Cut(v, "/")
	if c == "" {
		return nil
	}
	return &c
}

// fkOrders builds orders (keyed by order id) joined with customers on the
// order's customer: "inner" and "left" are the two joins' results.
func fkOrders(t *testing.T, parts int32) *topologytest.Driver {
	t.Helper()
	d := dsl.New(nil, dsl.RequireNames())
	orders := dsl.TableFrom(d, "orders", "orders", str, str)
	customers := dsl.TableFrom(d, "customers", "customers", pstr, str)
	dsl.ForeignKeyJoin(orders, customers, orderCustomer, func(k, o, c string) string { return k + ":" + o + "@" + c },
		dsl.Named("inner")).ToStream().To("inner", str, str)
	dsl.ForeignKeyLeftJoin(orders, customers, orderCustomer, func(k, o, c string, found bool) string {
		if !found {
			c = "?" + c
		}
		return k + ":" + o + "@" + c
	}, dsl.Named("left")).ToStream().To("left", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	return topologytest.New(t, top, topologytest.Options{Partitions: parts})
}

// kv is a result as the unit tests compare them: key and value, "" for a
// deletion.
type kv struct{ K, V string }

func readKVs(drv *topologytest.Driver, topic string) []kv {
	var out []kv
	for _, r := range readJoinRecs(drv, topic) {
		out = append(out, kv{r.Key, r.Value})
	}
	return out
}

// TestForeignKeyJoin runs named scenarios through both joins, over one
// and three partitions (with three, most orders and their customers are in
// different tasks, so every result takes the round trip through the
// internal topics). Each step pipes records and states the results of
// each join it must produce, in order.
func TestForeignKeyJoin(t *testing.T) {
	t.Parallel()
	type pipe struct{ topic, key, value string } // value "": a tombstone
	type step struct {
		in          []pipe
		inner, left []kv
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"basic: a match, an order without its customer, the customer arriving", []step{
			{in: []pipe{{"customers", "c1", "Ann"}}},
			{in: []pipe{{"orders", "o1", "c1/x"}}, inner: []kv{{"o1", "o1:c1/x@Ann"}}, left: []kv{{"o1", "o1:c1/x@Ann"}}},
			// The inner join answers an unmatched subscription with a
			// deletion: it keeps no record of its results.
			{in: []pipe{{"orders", "o2", "c2/y"}}, inner: []kv{{"o2", ""}}, left: []kv{{"o2", "o2:c2/y@?"}}},
			{in: []pipe{{"customers", "c2", "Bob"}}, inner: []kv{{"o2", "o2:c2/y@Bob"}}, left: []kv{{"o2", "o2:c2/y@Bob"}}},
		}},
		{"foreign key change: the old customer's updates no longer reach the order", []step{
			{in: []pipe{{"customers", "c1", "Ann"}, {"customers", "c2", "Bob"}, {"orders", "o1", "c1/x"}},
				inner: []kv{{"o1", "o1:c1/x@Ann"}}, left: []kv{{"o1", "o1:c1/x@Ann"}}},
			{in: []pipe{{"orders", "o1", "c2/x"}}, inner: []kv{{"o1", "o1:c2/x@Bob"}}, left: []kv{{"o1", "o1:c2/x@Bob"}}},
			{in: []pipe{{"customers", "c1", "Ann2"}}},
			{in: []pipe{{"orders", "o1", "c3/x"}}, inner: []kv{{"o1", ""}}, left: []kv{{"o1", "o1:c3/x@?"}}},
			{in: []pipe{{"customers", "c2", "Bob2"}}},
		}},
		{"left deletion: the result is deleted at once, later customer updates give nothing", []step{
			{in: []pipe{{"customers", "c1", "Ann"}, {"orders", "o1", "c1/x"}},
				inner: []kv{{"o1", "o1:c1/x@Ann"}}, left: []kv{{"o1", "o1:c1/x@Ann"}}},
			{in: []pipe{{"orders", "o1", ""}}, inner: []kv{{"o1", ""}}, left: []kv{{"o1", ""}}},
			{in: []pipe{{"customers", "c1", "Ann2"}}},
			{in: []pipe{{"orders", "o9", ""}}}, // never held: nothing to delete
		}},
		{"right deletion: inner deletes, left joins with found false", []step{
			{in: []pipe{{"customers", "c1", "Ann"}, {"orders", "o1", "c1/x"}},
				inner: []kv{{"o1", "o1:c1/x@Ann"}}, left: []kv{{"o1", "o1:c1/x@Ann"}}},
			{in: []pipe{{"customers", "c1", ""}}, inner: []kv{{"o1", ""}}, left: []kv{{"o1", "o1:c1/x@?"}}},
			{in: []pipe{{"customers", "c1", "Ann3"}}, inner: []kv{{"o1", "o1:c1/x@Ann3"}}, left: []kv{{"o1", "o1:c1/x@Ann3"}}},
		}},
		{"right update fans out to every order of the customer, and only those", []step{
			{in: []pipe{{"orders", "o1", "c1/a"}, {"orders", "o2", "c1/b"}, {"orders", "o3", "c2/c"}, {"orders", "o4", "c1/d"}},
				inner: []kv{{"o1", ""}, {"o2", ""}, {"o3", ""}, {"o4", ""}},
				left:  []kv{{"o1", "o1:c1/a@?"}, {"o2", "o2:c1/b@?"}, {"o3", "o3:c2/c@?"}, {"o4", "o4:c1/d@?"}}},
			{in: []pipe{{"customers", "c1", "Ann"}},
				inner: []kv{{"o1", "o1:c1/a@Ann"}, {"o2", "o2:c1/b@Ann"}, {"o4", "o4:c1/d@Ann"}},
				left:  []kv{{"o1", "o1:c1/a@Ann"}, {"o2", "o2:c1/b@Ann"}, {"o4", "o4:c1/d@Ann"}}},
		}},
		{"nil foreign key: no inner result (a deletion of an old one), a left result at once", []step{
			{in: []pipe{{"orders", "o3", "/z"}}, left: []kv{{"o3", "o3:/z@?"}}},
			{in: []pipe{{"customers", "c1", "Ann"}, {"orders", "o1", "c1/x"}},
				inner: []kv{{"o1", "o1:c1/x@Ann"}}, left: []kv{{"o1", "o1:c1/x@Ann"}}},
			{in: []pipe{{"orders", "o1", "/w"}}, inner: []kv{{"o1", ""}}, left: []kv{{"o1", "o1:/w@?"}}},
			{in: []pipe{{"customers", "c1", "Ann2"}}},
			{in: []pipe{{"orders", "o3", ""}}, left: []kv{{"o3", ""}}},
		}},
	}
	for _, tc := range cases {
		for _, parts := range []int32{1, 3} {
			t.Run(fmt.Sprintf("%s/partitions=%d", tc.name, parts), func(t *testing.T) {
				t.Parallel()
				drv := fkOrders(t, parts)
				for i, st := range tc.steps {
					for _, p := range st.in {
						var v []byte
						if p.value != "" {
							v = []byte(p.value)
						}
						topologytest.Input(drv, p.topic, str, topology.Bytes()).Pipe(p.key, v)
					}
					require.Equal(t, st.inner, readKVs(drv, "inner"), "step %d inner, %d partitions", i, parts)
					require.Equal(t, st.left, readKVs(drv, "left"), "step %d left, %d partitions", i, parts)
				}
			})
		}
	}
}

// TestForeignKeyJoinStaleResponse: a response answers the left value that
// subscribed, and the left key may have changed since. The driver drains
// the internal topics in order after each piped record, so a piped table
// record cannot overtake its own response; a grouping through a
// repartition topic can: one piped record flat-mapped into two updates of
// order o1 puts both updates ahead of the first one's subscription. The
// response to "c1/a" then finds o1 at "c2/b" and must be dropped (counted
// as EventStaleDropped), else o1 would briefly be joined with the wrong
// customer.
func TestForeignKeyJoinStaleResponse(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	batches := dsl.StreamFrom(d, "batches", "batches", str, str)
	updates := dsl.FlatMap(batches, func(k, v string) []dsl.KeyValue[string, string] {
		var out []dsl.KeyValue[string, string]
		for u := range strings.SplitSeq(v, ";") {
			out = append(out, dsl.KeyValue[string, string]{Key: k, Value: u})
		}
		return out
	})
	orders := updates.GroupByKey(str, str, dsl.Named("by-order")).Reduce(func(_, v string) string { return v }, dsl.Named("orders"))
	customers := dsl.TableFrom(d, "customers", "customers", pstr, str)
	dsl.ForeignKeyJoin(orders, customers, orderCustomer, func(k, o, c string) string { return k + ":" + o + "@" + c },
		dsl.Named("j")).ToStream().To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	for _, parts := range []int32{1, 3} {
		drv := topologytest.New(t, top, topologytest.Options{Partitions: parts})
		topologytest.Input(drv, "customers", str, str).Pipe("c1", "Ann")
		topologytest.Input(drv, "customers", str, str).Pipe("c2", "Bob")
		topologytest.Input(drv, "batches", str, str).Pipe("o1", "c1/a;c2/b")
		require.Equal(t, []kv{{"o1", "o1:c2/b@Bob"}}, readKVs(drv, "out"), "%d partitions", parts)
		require.Equal(t, int64(1), drv.Count("j-resolve", dsl.EventStaleDropped), "%d partitions", parts)
	}
}

// TestForeignKeyJoinTopology: the join's topics, store and nodes are named
// after it, the subscription store is a changelogged store like any other,
// and unmaterialized tables fail the build.
func TestForeignKeyJoinTopology(t *testing.T) {
	t.Parallel()
	drv := fkOrders(t, 2)
	top := drv.Topology()
	var reps []string
	for _, r := range top.Repartitions() {
		reps = append(reps, r.Topic)
	}
	require.Equal(t, []string{
		"test-inner-subscription-repartition", "test-inner-response-repartition",
		"test-left-subscription-repartition", "test-left-response-repartition",
	}, reps)
	require.Equal(t, []string{"orders", "customers", "inner-subscriptions", "left-subscriptions"}, top.StoreNames())
	require.Equal(t, []string{"customers", "test-inner-subscription-repartition"}, top.StoreSources("inner-subscriptions"))

	d := dsl.New(nil)
	orders := dsl.TableFrom(d, "orders", "orders", str, str)
	customers := dsl.TableFrom(d, "customers", "customers", pstr, str)
	mapped := dsl.MapTableValues(orders, func(_, v string) string { return v })
	dsl.ForeignKeyJoin(mapped, customers, orderCustomer, func(_, o, c string) string { return o + c }).ToStream().To("out", str, str)
	be := joinBuildError(t, d)
	require.ErrorIs(t, be, dsl.ErrNotMaterialized)
	require.Equal(t, "orders-map-values-fk-join", be.Operator)

	d = dsl.New(nil, dsl.RequireNames())
	orders = dsl.TableFrom(d, "orders", "orders", str, str)
	customers = dsl.TableFrom(d, "customers", "customers", pstr, str)
	dsl.ForeignKeyLeftJoin(orders, customers, orderCustomer, func(_, o, c string, _ bool) string { return o + c }).ToStream().To("out", str, str)
	require.ErrorIs(t, joinBuildError(t, d), dsl.ErrNameRequired)
}

// TestForeignKeyJoinNotMaterializedAlone: the build reports the missing
// store and nothing else (no dangling node downstream).
func TestForeignKeyJoinNotMaterializedAlone(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	orders := dsl.TableFrom(d, "orders", "orders", str, str)
	customers := dsl.TableFrom(d, "customers", "customers", pstr, str)
	vip := customers.Filter(func(_ *string, v string) bool { return strings.HasPrefix(v, "vip") })
	dsl.ForeignKeyJoin(orders, vip, orderCustomer, func(_, o, c string) string { return o + c }).ToStream().To("out", str, str)
	_, err := d.Build()
	require.ErrorIs(t, err, dsl.ErrNotMaterialized)
	require.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 1, "%v", err)
}

// TestForeignKeyJoinSelf joins a table with itself: employees with their
// manager's name. The left and right nodes then hang off the same table,
// and one change both re-subscribes the employee and answers the
// employee's reports.
func TestForeignKeyJoinSelf(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	emps := dsl.TableFrom(d, "emps", "emps", pstr, str) // value "<manager>/<name>"
	manager := func(_ *string, v string) *string { return orderCustomer("", v) }
	dsl.ForeignKeyLeftJoin(emps, emps, manager, func(k *string, v, m string, found bool) string {
		_, name, _ := strings.Cut(v, "/")
		_, mname, _ := strings.Cut(m, "/")
		if !found {
			mname = "?"
		}
		return name + " reports to " + mname
	}, dsl.Named("reports")).ToStream().To("out", pstr, str)
	top, err := d.Build()
	require.NoError(t, err)
	for _, parts := range []int32{1, 3} {
		drv := topologytest.New(t, top, topologytest.Options{Partitions: parts})
		in := topologytest.Input(drv, "emps", str, str)
		in.Pipe("e1", "/Ann")
		in.Pipe("e2", "e1/Bob")
		in.Pipe("e3", "e1/Cid")
		in.Pipe("e1", "/Anne")
		in.Pipe("e3", "e2/Cid")
		in.Pipe("e2", "e1/Bobby")
		got := topologytest.Output(drv, "out", str, str).ReadKeyValues()
		require.Equal(t, map[string]string{"e1": "Anne reports to ?", "e2": "Bobby reports to Anne", "e3": "Cid reports to Bobby"}, got, "%d partitions", parts)
	}
}
