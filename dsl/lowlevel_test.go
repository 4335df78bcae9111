package dsl_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
)

// TestDSLToLowLevelAndBack: a DSL stream feeds a hand-written node that
// uses its own store (a dedup of values per key) and sends on to a DSL
// stream made by FromNode, which a DSL aggregation counts.
func TestDSLToLowLevelAndBack(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	b := d.Topology()
	seen := topology.Store(b, "seen", str, str)
	fresh, back := dsl.FromNode[string, string](d, "dedup")
	in := dsl.MapValues(dsl.StreamFrom(d, "in", "in", str, str), func(_, v string) string { return strings.ToLower(v) })
	dsl.Process(in, "dedup", func(c *topology.Call, r topology.Record[string, string]) error {
		last, _, err := seen.Get(c, r.Key)
		if err != nil || last == r.Value {
			return err
		}
		if err := seen.Put(c, r.Key, r.Value); err != nil {
			return err
		}
		return back.SendRecord(c, r)
	}, topology.Stores(seen.Name()))
	fresh.GroupByKey(str, str).Count(dsl.Named("changes")).ToStream().To("out", str, topology.Int64())
	dr := newDriver(t, d)
	dr.pipeAll("in", "a", "X", "a", "x", "a", "y", "b", "y")
	require.Equal(t, []out{{"out", "a", i64(1)}, {"out", "a", i64(2)}, {"out", "b", i64(1)}}, dr.take())
	n, _ := dr.count("changes", "a")
	require.Equal(t, int64(2), n)
}

// TestFromSource: a stream of a low-level source needs no send.
func TestFromSource(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	src := topology.Source(d.Topology(), "raw", "raw", str, str)
	s, _ := dsl.FromNode[string, string](d, src.Name())
	s.To("out", str, str)
	dr := newDriver(t, d)
	dr.pipeAll("raw", "k", "v")
	require.Equal(t, []out{{"out", "k", "v"}}, dr.take())
}
