package dsl_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
)

// wordCountish builds a per-key count with a filter; explicit names where
// given.
func wordCountish(d *dsl.Builder, opts ...dsl.Opt) {
	s := dsl.StreamFrom(d, "lines", "lines", str, str).Filter(func(_, v string) bool { return v != "" })
	s.GroupByKey(str, str).Count(opts...).ToStream().To("counts", str, topology.Int64())
}

// TestDerivedNames pins the derived names: they follow the parent's name
// and the operator, so the same code always gives the same node, store and
// changelog names, and a second operator of a kind on one parent gets
// "-2".
func TestDerivedNames(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	wordCountish(d)
	s := dsl.StreamFrom(d, "other", "other", str, str)
	s.Filter(func(string, string) bool { return true }).To("x", str, str)
	s.Filter(func(string, string) bool { return false }).To("y", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	require.Equal(t, []string{"lines-filter-group-count"}, top.StoreNames())
	require.Equal(t, `Topology
  source "lines" topic=lines [string, string] -> lines-filter
  processor "lines-filter" [string, string] <- lines -> lines-filter-group-count
  processor "lines-filter-group-count" [string, string] <- lines-filter -> lines-filter-group-count-to-stream-to stores=lines-filter-group-count
  sink "lines-filter-group-count-to-stream-to" topic=counts [string, int64] <- lines-filter-group-count
  source "other" topic=other [string, string] -> other-filter, other-filter-2
  processor "other-filter" [string, string] <- other -> other-filter-to
  sink "other-filter-to" topic=x [string, string] <- other-filter
  processor "other-filter-2" [string, string] <- other -> other-filter-2-to
  sink "other-filter-2-to" topic=y [string, string] <- other-filter-2
  store "lines-filter-group-count" [string, int64] sources=lines
  sub-topology 0: lines, lines-filter, lines-filter-group-count, lines-filter-group-count-to-stream-to
  sub-topology 1: other, other-filter, other-filter-to, other-filter-2, other-filter-2-to
`, top.Describe())
}

// TestRequireNames: with RequireNames a stateful operator without Named
// fails the build, so a store's name cannot depend on code position; a
// named one passes. Duplicate explicit names fail too.
func TestRequireNames(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil, dsl.RequireNames())
	wordCountish(d)
	_, err := d.Build()
	require.ErrorIs(t, err, dsl.ErrNameRequired)

	d = dsl.New(nil, dsl.RequireNames())
	wordCountish(d, dsl.Named("word-counts"))
	top, err := d.Build()
	require.NoError(t, err)
	require.Equal(t, []string{"word-counts"}, top.StoreNames())

	d = dsl.New(nil)
	s := dsl.StreamFrom(d, "in", "in", str, str)
	s.Filter(func(string, string) bool { return true }, dsl.Named("f")).To("a", str, str)
	s.Filter(func(string, string) bool { return true }, dsl.Named("f")).To("b", str, str)
	_, err = d.Build()
	var be *dsl.BuildError
	require.True(t, errors.As(err, &be))
	require.ErrorIs(t, be, dsl.ErrDuplicateName)
	require.Equal(t, "f", be.Operator)
}

// TestOperatorAfterBuild: a built Topology runs the DSL's operator lists
// from many tasks, so an operator added after Build must not reach them
// (here it would make the running topology send to a node it does not
// have, a UsageError) and a second Build says why.
func TestOperatorAfterBuild(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	s := dsl.MapValues(dsl.StreamFrom(d, "in", "in", str, str), func(_, v string) string { return v })
	s.To("out", str, str)
	dr := newDriver(t, d)
	s.To("late", str, str)
	dr.pipeAll("in", "k", "v")
	require.Equal(t, []out{{"out", "k", "v"}}, dr.take())
	_, err := d.Build()
	require.ErrorIs(t, err, dsl.ErrBuilt)
}
