package dsl_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
)

var str = topology.String()

// TestStatelessOperators runs each stateless operator on the same input
// (a:1 b:22 c:333 a:4444) and checks what reaches the output topic, in
// order. Each case starts from the source, so the first operator is a
// materialized node; the "chain" cases exercise fused operators.
func TestStatelessOperators(t *testing.T) {
	t.Parallel()
	long := func(_, v string) bool { return len(v) > 2 }
	cases := []struct {
		name  string
		build func(in *dsl.Stream[string, string]) *dsl.Stream[string, string]
		want  []string // key=value
	}{
		{"filter", func(in *dsl.Stream[string, string]) *dsl.Stream[string, string] { return in.Filter(long) },
			[]string{"c=333", "a=4444"}},
		{"filter-not", func(in *dsl.Stream[string, string]) *dsl.Stream[string, string] { return in.FilterNot(long) },
			[]string{"a=1", "b=22"}},
		{"map", func(in *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			return dsl.Map(in, func(k, v string) (string, string) { return v, k })
		}, []string{"1=a", "22=b", "333=c", "4444=a"}},
		{"map-values", func(in *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			return dsl.MapValues(in, func(k, v string) string { return k + v })
		}, []string{"a=a1", "b=b22", "c=c333", "a=a4444"}},
		{"select-key", func(in *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			return dsl.SelectKey(in, func(k, v string) string { return strings.ToUpper(k) })
		}, []string{"A=1", "B=22", "C=333", "A=4444"}},
		{"flat-map", func(in *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			return dsl.FlatMap(in, func(k, v string) []dsl.KeyValue[string, string] {
				if len(v) > 2 {
					return nil
				}
				return []dsl.KeyValue[string, string]{{Key: k, Value: v}, {Key: k + k, Value: v}}
			})
		}, []string{"a=1", "aa=1", "b=22", "bb=22"}},
		{"flat-map-values", func(in *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			return dsl.FlatMapValues(in, func(_, v string) []string { return strings.Split(v[:min(len(v), 2)], "") })
		}, []string{"a=1", "b=2", "b=2", "c=3", "c=3", "a=4", "a=4"}},
		{"chain", func(in *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			s := in.Filter(func(k, _ string) bool { return k != "b" })
			s = dsl.MapValues(s, func(_, v string) string { return v + "!" })
			return s.FilterNot(func(_, v string) bool { return v == "333!" })
		}, []string{"a=1!", "a=4444!"}},
		{"branch-merge", func(in *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			br := in.Branch([]func(string, string) bool{
				func(k, _ string) bool { return k == "a" },
				func(_, v string) bool { return len(v) > 1 }, // b and c; a's 4444 went to branch 0
			})
			tagged := dsl.MapValues(br[1], func(_, v string) string { return "#" + v })
			return br[0].Merge(tagged)
		}, []string{"a=1", "b=#22", "c=#333", "a=4444"}},
		{"merge-source-and-fused", func(in *dsl.Stream[string, string]) *dsl.Stream[string, string] {
			// in has a source node, the filtered stream a fused one: each
			// record must come once through each side.
			return in.Merge(in.Filter(long))
		}, []string{"a=1", "b=22", "c=333", "c=333", "a=4444", "a=4444"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := dsl.New(nil)
			var peeked []string
			tc.build(dsl.StreamFrom(d, "in", "in", str, str)).
				Peek(func(k, v string) { peeked = append(peeked, k+"="+v) }).
				To("out", str, str)
			dr := newDriver(t, d)
			dr.pipeAll("in", "a", "1", "b", "22", "c", "333", "a", "4444")
			var got []string
			for _, o := range dr.take() {
				require.Equal(t, "out", o.Topic)
				got = append(got, o.Key+"="+o.Value)
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.want, peeked)
		})
	}
}

// TestFusedChainHasOneNode checks the shape behind the zero-allocation
// claim: three stateless operators after a source add one low-level node
// (the first operator's), not three, so records are boxed once.
func TestFusedChainHasOneNode(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	s := dsl.StreamFrom(d, "in", "in", str, str)
	s = s.Filter(func(string, string) bool { return true })
	s = dsl.MapValues(s, func(_, v string) string { return v })
	s.Peek(func(string, string) {}).To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	require.Equal(t, `Topology
  source "in" topic=in [string, string] -> in-filter
  processor "in-filter" [string, string] <- in -> in-filter-map-values-peek-to
  sink "in-filter-map-values-peek-to" topic=out [string, string] <- in-filter
  sub-topology 0: in, in-filter, in-filter-map-values-peek-to
`, top.Describe())
}
