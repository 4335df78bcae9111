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

// TestCount counts per key: the store holds the running counts and the
// table's stream carries each new count.
func TestCount(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	counts := dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str).Count(dsl.Named("counts"))
	counts.ToStream().To("out", str, topology.Int64())
	dr := newDriver(t, d)
	dr.pipeAll("in", "a", "x", "b", "y", "a", "z")
	require.Equal(t, []out{{"out", "a", i64(1)}, {"out", "b", i64(1)}, {"out", "a", i64(2)}}, dr.take())
	n, ok := dr.count("counts", "a")
	require.True(t, ok)
	require.Equal(t, int64(2), n)
	ref, ok := counts.Store()
	require.True(t, ok)
	require.Equal(t, "counts", ref.Name())
}

type amount struct {
	N int64 `json:"n"`
}

// TestReduceAggregateTombstones checks Reduce and Aggregate, and the two
// null rules of Kafka Streams: a record with a nil value is skipped (no
// state change, no output), and an aggregate that is nil deletes its key
// and is forwarded as a deletion (a tombstone on the wire).
func TestReduceAggregateTombstones(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	in := dsl.StreamFrom(d, "in", "in", str, topology.JSON[*amount]())
	g := in.GroupByKey(str, topology.JSON[*amount]())
	g.Reduce(func(agg, v *amount) *amount { return &amount{agg.N + v.N} }, dsl.Named("sum")).
		ToStream().To("sums", str, topology.JSON[*amount]())
	// The aggregate keeps a running total, and a total of zero deletes it.
	dsl.Aggregate(g, func() *amount { return &amount{} }, func(_ string, v *amount, agg *amount) *amount {
		if agg.N+v.N == 0 {
			return nil
		}
		return &amount{agg.N + v.N}
	}, topology.JSON[*amount](), dsl.Named("balance")).ToStream().To("balances", str, topology.JSON[*amount]())
	dr := newDriver(t, d)
	dr.pipeAll("in", "a", `{"n":5}`, "a", `{"n":-5}`)
	dr.pipe("in", "a", nil) // a tombstone: skipped by both
	dr.pipeAll("in", "a", `{"n":2}`)
	require.Equal(t, []out{
		{"sums", "a", `{"n":5}`}, {"balances", "a", `{"n":5}`},
		{"sums", "a", `{"n":0}`}, {"balances", "a", "<nil>"},
		{"sums", "a", `{"n":2}`}, {"balances", "a", `{"n":2}`},
	}, dr.take())
	require.JSONEq(t, `{"n":2}`, string(dr.stores["sum"]["a"]))
	require.JSONEq(t, `{"n":2}`, string(dr.stores["balance"]["a"]))
}

// TestTableFrom materializes a compacted topic: records put, tombstones
// delete (in the store and downstream); Filter turns a failed update into
// a deletion; MapTableValues keeps deletions.
func TestTableFrom(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	users := dsl.TableFrom(d, "users", "users", str, topology.JSON[*amount]())
	rich := users.Filter(func(_ string, a *amount) bool { return a.N >= 10 })
	dsl.MapTableValues(rich, func(k string, a *amount) string { return k + ":" + strings.Repeat("$", int(a.N/10)) }).
		ToStream().To("rich", str, str)
	dr := newDriver(t, d)
	dr.pipeAll("users", "a", `{"n":20}`, "b", `{"n":1}`)
	dr.pipe("users", "a", nil)
	require.Equal(t, []out{{"rich", "a", "a:$$"}, {"rich", "b", ""}, {"rich", "a", ""}}, dr.take())
	require.Equal(t, map[string][]byte{"b": []byte(`{"n":1}`)}, dr.stores["users"])
	ref, ok := users.Store()
	require.True(t, ok)
	require.Equal(t, "users", ref.Name())
	_, ok = rich.Store()
	require.False(t, ok, "a filtered table is not materialized")
}

// TestRekeyedGroupingRepartitions: a grouping after a key change sends the
// records through a repartition topic named after it, so that each new
// key's count is whole even though its records came from every input
// partition. Without the repartition (the records counted in the tasks of
// their old keys' partitions) the counts split: a=3 ends as a count of 1
// or 2 in several partitions. A value change keeps the key and adds no
// topic.
func TestRekeyedGroupingRepartitions(t *testing.T) {
	t.Parallel()
	words := map[string]int64{"a": 3, "b": 2, "c": 1}
	withDocs := map[string]int64{"a": 3, "b": 2, "c": 1}
	for i := 1; i <= 6; i++ {
		withDocs[fmt.Sprintf("doc%d", i)] = 1
	}
	rekeys := map[string]struct {
		rekey func(*dsl.Stream[string, string]) *dsl.Stream[string, string]
		want  map[string]int64
	}{
		"map": {func(s *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			return dsl.Map(s, func(k, v string) (string, string) { return v, k })
		}, words},
		"select-key": {func(s *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			return dsl.SelectKey(s, func(_, v string) string { return v })
		}, words},
		"flat-map": {func(s *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			return dsl.FlatMap(s, func(k, v string) []dsl.KeyValue[string, string] {
				return []dsl.KeyValue[string, string]{{Key: v, Value: k}}
			})
		}, words},
		"merge-with-rekeyed": {func(s *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			return s.Merge(dsl.SelectKey(s, func(_, v string) string { return v }))
		}, withDocs},
		"filter-after-select-key": {func(s *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			return dsl.SelectKey(s, func(_, v string) string { return v }).Filter(func(string, string) bool { return true })
		}, words},
	}
	for name, tc := range rekeys {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := dsl.New(nil)
			counts := tc.rekey(dsl.StreamFrom(d, "in", "in", str, str)).GroupByKey(str, str, dsl.Named("by-word")).Count()
			counts.ToStream().To("counts", str, topology.Int64())
			top, err := d.Build()
			require.NoError(t, err)
			require.Len(t, top.Repartitions(), 1)
			require.Equal(t, "by-word", top.Repartitions()[0].Name)

			drv := topologytest.New(t, top, topologytest.Options{Application: "wc", Partitions: 4})
			in := topologytest.Input(drv, "in", str, str)
			for i, w := range []string{"a", "b", "a", "c", "a", "b"} {
				in.Pipe(fmt.Sprintf("doc%d", i+1), w)
			}
			got := topologytest.Output(drv, "counts", str, topology.Int64()).ReadKeyValues()
			require.Equal(t, tc.want, got)
			require.NotEmpty(t, drv.Produced("wc-by-word-repartition"), "the records went through the repartition topic")
		})
	}
	d := dsl.New(nil)
	dsl.MapValues(dsl.StreamFrom(d, "in", "in", str, str), func(_, v string) int { return len(v) }).
		Filter(func(string, int) bool { return true }).GroupByKey(str, topology.JSON[int]()).Count()
	top, err := d.Build()
	require.NoError(t, err)
	require.Empty(t, top.Repartitions(), "a value change keeps the key")
}

// TestGroupByAndRepartitionNames: GroupBy is SelectKey then GroupByKey;
// an unnamed re-keyed grouping is refused under RequireNames, since its
// repartition topic would be named by its position; Repartition and
// Through name theirs.
func TestGroupByAndRepartitionNames(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	lines := dsl.StreamFrom(d, "lines", "lines", str, str)
	dsl.GroupBy(lines, func(_, v string) string { return v }, str, str, dsl.Named("by-line")).Count(dsl.Named("line-counts"))
	lines.Repartition(str, str, dsl.Named("again")).Through(str, str, dsl.Named("through"))
	top, err := d.Build()
	require.NoError(t, err)
	var names []string
	for _, r := range top.Repartitions() {
		names = append(names, r.Name)
	}
	require.Equal(t, []string{"by-line", "again", "through"}, names)

	d = dsl.New(nil, dsl.RequireNames())
	lines = dsl.StreamFrom(d, "lines", "lines", str, str)
	dsl.GroupBy(lines, func(_, v string) string { return v }, str, str).Count(dsl.Named("n"))
	_, err = d.Build()
	require.ErrorIs(t, err, dsl.ErrNameRequired)
}

// TestMaterialize gives a filtered table a store: entries that pass are
// put, entries that stop passing or are deleted upstream are deleted.
func TestMaterialize(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	users := dsl.TableFrom(d, "users", "users", str, topology.JSON[*amount]())
	rich := users.Filter(func(_ string, a *amount) bool { return a.N >= 10 }).
		Materialize(str, topology.JSON[*amount](), dsl.Named("rich"))
	rich.ToStream().To("rich", str, topology.JSON[*amount]())
	require.Same(t, users, users.Materialize(str, topology.JSON[*amount]()))
	dr := newDriver(t, d)
	dr.pipeAll("users", "a", `{"n":20}`, "b", `{"n":30}`, "c", `{"n":1}`, "b", `{"n":3}`)
	dr.pipe("users", "a", nil)
	require.Empty(t, dr.stores["rich"])
	dr.pipeAll("users", "c", `{"n":11}`)
	require.Equal(t, map[string][]byte{"c": []byte(`{"n":11}`)}, dr.stores["rich"])
	require.Equal(t, []out{
		{"rich", "a", `{"n":20}`}, {"rich", "b", `{"n":30}`}, {"rich", "c", "<nil>"},
		{"rich", "b", "<nil>"}, {"rich", "a", "<nil>"}, {"rich", "c", `{"n":11}`},
	}, dr.take())
	ref, ok := rich.Store()
	require.True(t, ok)
	require.Equal(t, "rich", ref.Name())
}
