package dsl_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// joinBuildError builds d and returns its single *dsl.BuildError.
func joinBuildError(t *testing.T, d *dsl.Builder) *dsl.BuildError {
	t.Helper()
	_, err := d.Build()
	require.Error(t, err)
	var be *dsl.BuildError
	require.True(t, errors.As(err, &be), "%v", err)
	return be
}

// TestJoinNotMaterialized: a join reads the table's store, so a table
// without one (a derived table) fails the build with a message naming the
// table and the fix; the build reports nothing else (no dangling node).
func TestJoinNotMaterialized(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	orders := dsl.StreamFrom(d, "orders", "orders", str, str)
	customers := dsl.TableFrom(d, "customers", "customers", str, str)
	vip := customers.Filter(func(_, v string) bool { return strings.HasPrefix(v, "vip") })
	dsl.Join(orders, vip, func(_, o, c string) string { return o + c }).To("out", str, str)
	be := joinBuildError(t, d)
	require.ErrorIs(t, be, dsl.ErrNotMaterialized)
	require.Equal(t, "orders-join", be.Operator)
	require.Equal(t, `dsl: operator "orders-join": dsl: joined table is not materialized: table "customers-filter" has no store; call Materialize on it before the join`, be.Error())
	_, err := d.Build()
	require.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 1, "%v", err)

	for _, mk := range []func(a, b *dsl.Table[string, string]) *dsl.Table[string, string]{
		func(a, b *dsl.Table[string, string]) *dsl.Table[string, string] {
			return dsl.TableJoin(a, b, func(_, x, y string) string { return x + y })
		},
		func(a, b *dsl.Table[string, string]) *dsl.Table[string, string] {
			return dsl.TableLeftJoin(a, b, func(_, x, y string, _ bool) string { return x + y })
		},
		func(a, b *dsl.Table[string, string]) *dsl.Table[string, string] {
			return dsl.TableOuterJoin(a, b, func(_, x string, _ bool, y string, _ bool) string { return x + y })
		},
	} {
		d := dsl.New(nil)
		a := dsl.TableFrom(d, "a", "a", str, str)
		b := dsl.TableFrom(d, "b", "b", str, str)
		mk(dsl.MapTableValues(a, func(_, v string) string { return v }), b).ToStream().To("out", str, str)
		be := joinBuildError(t, d)
		require.ErrorIs(t, be, dsl.ErrNotMaterialized)
		require.Contains(t, be.Error(), `table "a-map-values" has no store; call Materialize`)

		// Materialized, the same join builds.
		d = dsl.New(nil)
		a = dsl.TableFrom(d, "a", "a", str, str)
		b = dsl.TableFrom(d, "b", "b", str, str)
		mk(b, dsl.MapTableValues(a, func(_, v string) string { return v }).Materialize(str, str)).ToStream().To("out", str, str)
		_, err := d.Build()
		require.NoError(t, err)
	}
}

// TestJoinRekeyed: a re-keyed stream's records are in the partitions of
// their old keys, so joining it fails the build and says to repartition;
// after Repartition the join builds.
func TestJoinRekeyed(t *testing.T) {
	t.Parallel()
	for _, left := range []bool{false, true} {
		d := dsl.New(nil)
		lines := dsl.StreamFrom(d, "lines", "lines", str, str)
		byLine := dsl.SelectKey(lines, func(_, v string) string { return v })
		customers := dsl.TableFrom(d, "customers", "customers", str, str)
		if left {
			dsl.LeftJoin(byLine, customers, func(_, v, c string, _ bool) string { return v + c }).To("out", str, str)
		} else {
			dsl.Join(byLine, customers, func(_, v, c string) string { return v + c }).To("out", str, str)
		}
		be := joinBuildError(t, d)
		require.ErrorIs(t, be, dsl.ErrRekeyed)
		require.Contains(t, be.Error(), `stream "lines-select-key" was re-keyed; call Repartition(ks, vs) before joining it with table "customers"`)

		// RepartitionWith: the join repartitions the stream itself.
		d = dsl.New(nil)
		lines = dsl.StreamFrom(d, "lines", "lines", str, str)
		byLine = dsl.SelectKey(lines, func(_, v string) string { return v })
		customers = dsl.TableFrom(d, "customers", "customers", str, str)
		dsl.Join(byLine, customers, func(_, v, c string) string { return v + c }, dsl.RepartitionWith(str, str)).To("out", str, str)
		topo, err := d.Build()
		require.NoError(t, err)
		require.Len(t, topo.Repartitions(), 1)
		require.Equal(t, "lines-select-key-join-repartition", topo.Repartitions()[0].Name)

		d = dsl.New(nil)
		lines = dsl.StreamFrom(d, "lines", "lines", str, str)
		byLine = dsl.SelectKey(lines, func(_, v string) string { return v }).Repartition(str, str, dsl.Named("by-line"))
		customers = dsl.TableFrom(d, "customers", "customers", str, str)
		dsl.Join(byLine, customers, func(_, v, c string) string { return v + c }).To("out", str, str)
		_, err = d.Build()
		require.NoError(t, err)
	}
}

// TestJoinNames: derived names, and the structure of the graph: the join
// node reads the table's store, which is fed by both topics.
func TestJoinNames(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil, dsl.RequireNames())
	orders := dsl.StreamFrom(d, "orders", "orders", str, str)
	customers := dsl.TableFrom(d, "customers", "customers", str, str)
	addresses := dsl.TableFrom(d, "addresses", "addresses", str, str)
	dsl.Join(orders, customers, func(_, o, c string) string { return o + c }).To("out", str, str)
	dsl.TableJoin(customers, addresses, func(_, c, a string) string { return c + a }).ToStream().To("out2", str, str)
	top, err := d.Build()
	require.NoError(t, err, "a join owns no state: RequireNames needs no name")
	desc := top.Describe()
	for _, want := range []string{
		`processor "orders-join" [string, string] <- orders -> orders-join-to stores=customers`,
		`processor "customers-join-this" [string, dsl.nullable[string]] <- customers -> customers-join-to-stream-to stores=addresses`,
		`processor "customers-join-other" [string, dsl.nullable[string]] <- addresses -> customers-join-to-stream-to stores=customers`,
		`store "customers" [string, string] sources=addresses, customers, orders`,
		`store "addresses" [string, string] sources=addresses, customers`,
	} {
		require.Contains(t, desc, want)
	}
}

// TestJoinBasics runs each join on a few records through the test driver:
// the stream record's key, timestamp and headers are kept, table updates
// emit nothing, tombstones remove entries.
func TestJoinBasics(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	orders := dsl.StreamFrom(d, "orders", "orders", str, str)
	customers := dsl.TableFrom(d, "customers", "customers", str, str)
	dsl.Join(orders, customers, func(k, o, c string) string { return k + ":" + o + "@" + c }).To("inner", str, str)
	dsl.LeftJoin(orders, customers, func(k, o, c string, found bool) string {
		if !found {
			return k + ":" + o + "@?"
		}
		return k + ":" + o + "@" + c
	}).To("left", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{Partitions: 2})
	in := topologytest.Input(drv, "orders", str, str)
	tab := topologytest.Input(drv, "customers", str, topology.Bytes())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hdr := []topology.Header{{Key: "h", Value: []byte("1")}}
	in.PipeRecord(topology.Record[string, string]{Key: "c1", Value: "o1", Timestamp: t0})
	tab.PipeRecord(topology.Record[string, []byte]{Key: "c1", Value: []byte("Ann"), Timestamp: t0.Add(time.Second)})
	in.PipeRecord(topology.Record[string, string]{Key: "c1", Value: "o2", Timestamp: t0.Add(2 * time.Second), Headers: hdr})
	tab.PipeRecord(topology.Record[string, []byte]{Key: "c1", Value: nil, Timestamp: t0.Add(3 * time.Second)})
	in.PipeRecord(topology.Record[string, string]{Key: "c1", Value: "o3", Timestamp: t0.Add(4 * time.Second)})

	inner := topologytest.Output(drv, "inner", str, str).ReadAll()
	require.Equal(t, []topology.Record[string, string]{
		{Key: "c1", Value: "c1:o2@Ann", Timestamp: t0.Add(2 * time.Second), Headers: hdr},
	}, inner)
	left := topologytest.Output(drv, "left", str, str).ReadAll()
	require.Len(t, left, 3)
	require.Equal(t, []string{"c1:o1@?", "c1:o2@Ann", "c1:o3@?"}, []string{left[0].Value, left[1].Value, left[2].Value})
	require.Equal(t, hdr, left[1].Headers)
}

// TestJoinNils: as in Kafka Streams, a stream record with a nil value
// joins nothing, one with a nil key joins only in a left join (without a
// lookup, found false); a table join whose joiner returns nil deletes
// the key.
func TestJoinNils(t *testing.T) {
	t.Parallel()
	ps := topology.JSON[*string]()
	d := dsl.New(nil)
	s := dsl.StreamFrom(d, "s", "s", ps, ps)
	tab := dsl.TableFrom(d, "t", "t", ps, ps)
	dsl.Join(s, tab, func(_, v, vt *string) string { return *v + "@" + *vt }).To("inner", ps, str)
	dsl.LeftJoin(s, tab, func(_, v, vt *string, found bool) string {
		if !found {
			return *v + "@?"
		}
		return *v + "@" + *vt
	}).To("left", ps, str)
	other := dsl.TableFrom(d, "u", "u", ps, ps)
	dsl.TableJoin(tab, other, func(_, a, b *string) *string {
		if *b == "none" {
			return nil
		}
		r := *a + "+" + *b
		return &r
	}).ToStream().To("tables", ps, ps)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{})
	p := func(s string) *string { return &s }
	in := topologytest.Input(drv, "s", ps, ps)
	topologytest.Input(drv, "t", ps, ps).Pipe(p("k"), p("T"))
	in.Pipe(p("k"), nil)
	in.Pipe(nil, p("v0"))
	in.Pipe(p("k"), p("v1"))
	require.Equal(t, []string{"v1@T"}, values(topologytest.Output(drv, "inner", ps, str).ReadAll()))
	require.Equal(t, []string{"v0@?", "v1@T"}, values(topologytest.Output(drv, "left", ps, str).ReadAll()))

	u := topologytest.Input(drv, "u", ps, ps)
	u.Pipe(p("k"), p("U"))
	u.Pipe(p("k"), p("none"))
	got := topologytest.Output(drv, "tables", ps, ps).ReadAll()
	require.Len(t, got, 2)
	require.Equal(t, "T+U", *got[0].Value)
	require.Nil(t, got[1].Value, "a nil result is a deletion: a tombstone")
}

func values[K, V any](rs []topology.Record[K, V]) []V {
	var out []V
	for _, r := range rs {
		out = append(out, r.Value)
	}
	return out
}

// TestJoinChained: a table join's result, fed by two nodes, materialized
// and joined with a stream; both sides' changes reach the store.
func TestJoinChained(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	a := dsl.TableFrom(d, "a", "a", str, str)
	b := dsl.TableFrom(d, "b", "b", str, str)
	ab := dsl.TableOuterJoin(a, b, func(_, x string, _ bool, y string, _ bool) string { return x + "+" + y },
		dsl.Named("ab")).Materialize(str, str, dsl.Named("ab-store"))
	s := dsl.StreamFrom(d, "s", "s", str, str)
	dsl.Join(s, ab, func(_, v, j string) string { return v + "@" + j }).To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{Partitions: 3})
	in := topologytest.Input(drv, "s", str, str)
	topologytest.Input(drv, "a", str, str).Pipe("k", "A")
	in.Pipe("k", "1")
	topologytest.Input(drv, "b", str, str).Pipe("k", "B")
	in.Pipe("k", "2")
	topologytest.Input(drv, "a", str, topology.Bytes()).Pipe("k", nil)
	in.Pipe("k", "3")
	topologytest.Input(drv, "b", str, topology.Bytes()).Pipe("k", nil)
	in.Pipe("k", "4")
	require.Equal(t, []string{"1@A+", "2@A+B", "3@+B"}, values(topologytest.Output(drv, "out", str, str).ReadAll()))
	store, ok := ab.Store()
	require.True(t, ok)
	require.Empty(t, topologytest.All(drv, store))
}

// TestJoinRepartitionWith: orders keyed by order id, their value the
// customer, re-keyed by customer and joined with the customers table; the
// join repartitions them itself (RepartitionWith), so every order meets its
// customer whatever partition it was written to.
func TestJoinRepartitionWith(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	orders := dsl.StreamFrom(d, "orders", "orders", str, str)
	byCustomer := dsl.SelectKey(orders, func(_, customer string) string { return customer })
	customers := dsl.TableFrom(d, "customers", "customers", str, str)
	dsl.Join(byCustomer, customers, func(k, _, c string) string { return k + "@" + c }, dsl.RepartitionWith(str, str)).To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	drv := topologytest.New(t, top, topologytest.Options{Partitions: 4})
	tab := topologytest.Input(drv, "customers", str, str)
	in := topologytest.Input(drv, "orders", str, str)
	var want []string
	for c := range 8 {
		tab.Pipe(fmt.Sprintf("c%d", c), fmt.Sprintf("name%d", c))
	}
	for o := range 40 {
		c := fmt.Sprintf("c%d", o%8)
		in.Pipe(fmt.Sprintf("o%d", o), c)
		want = append(want, c+"@name"+c[1:])
	}
	var got []string
	for _, r := range topologytest.Output(drv, "out", str, str).ReadAll() {
		got = append(got, r.Value)
	}
	require.ElementsMatch(t, want, got)
}
