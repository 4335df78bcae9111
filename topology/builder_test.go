package topology_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

func TestBuildValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(b *topology.Builder)
	}{
		{
			name: "source processor processor sink with store",
			build: func(b *topology.Builder) {
				src := topology.Source(b, "orders", "orders", topology.String(), topology.JSON[order]())
				totals := topology.Store(b, "totals", topology.String(), topology.JSON[total]())
				topology.Node(b, "validate", noop[string, order], topology.Parents(src.Name()))
				topology.Node(b, "sum", noop[string, order], topology.Parents("validate"), topology.Stores(totals.Name()))
				topology.Sink(b, "out", "totals", topology.String(), topology.JSON[total](), topology.Parents("sum"))
			},
		},
		{
			name: "pass-through source to sink",
			build: func(b *topology.Builder) {
				src := topology.Source(b, "in", "in", topology.Bytes(), topology.Bytes())
				topology.Sink(b, "copy", "out", topology.Bytes(), topology.Bytes(), topology.Parents(src.Name()))
			},
		},
		{
			name: "source without children",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", topology.Bytes(), topology.Bytes())
			},
		},
		{
			name: "join of two sources into one store user",
			build: func(b *topology.Builder) {
				topology.Source(b, "a", "a", topology.String(), topology.String())
				topology.Source(b, "b", "b", topology.String(), topology.String())
				topology.Store(b, "st", topology.String(), topology.String())
				topology.Node(b, "join", noop[string, string], topology.Parents("a", "b"), topology.Stores("st"))
				topology.Node(b, "after", noop[string, string], topology.Parents("join"), topology.Stores("st"))
			},
		},
		{
			name: "parent listed twice",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", topology.String(), topology.String())
				topology.Node(b, "p", noop[string, string], topology.Parents("in", "in"))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := topology.NewBuilder()
			tt.build(b)
			top, err := b.Build()
			require.NoError(t, err)
			require.NotNil(t, top)
			require.NotEmpty(t, top.Describe())
		})
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	str, str2 := topology.String(), topology.String()
	tests := []struct {
		name   string
		build  func(b *topology.Builder)
		node   string // BuildError.Node
		reason string // substring of BuildError.Reason
	}{
		{
			name: "duplicate node name",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Node(b, "p", noop[string, string], topology.Parents("in"))
				topology.Node(b, "p", noop[string, string], topology.Parents("in"))
			},
			node:   "p",
			reason: "duplicate node name",
		},
		{
			name: "empty processor name",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Node(b, "", noop[string, string], topology.Parents("in"))
			},
			node:   "",
			reason: "processor has an empty name",
		},
		{
			name: "source without topic",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "", str, str2)
			},
			node:   "in",
			reason: "source has no topic",
		},
		{
			name: "sink without topic",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Sink(b, "out", "", str, str2, topology.Parents("in"))
			},
			node:   "out",
			reason: "sink has no topic",
		},
		{
			name: "two sources on one topic",
			build: func(b *topology.Builder) {
				topology.Source(b, "first", "in", str, str2)
				topology.Source(b, "second", "in", str, str2)
			},
			node:   "second",
			reason: `topic in is already read by source "first"`,
		},
		{
			name: "unknown parent",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Node(b, "p", noop[string, string], topology.Parents("in", "nope"))
			},
			node:   "p",
			reason: `unknown parent "nope"`,
		},
		{
			name: "sink as parent",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Sink(b, "out", "out", str, str2, topology.Parents("in"))
				topology.Node(b, "p", noop[string, string], topology.Parents("out"))
			},
			node:   "p",
			reason: `parent "out" is a sink`,
		},
		{
			name: "processor with no parent",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Node(b, "orphan", noop[string, string])
			},
			node:   "orphan",
			reason: "processor has no parent",
		},
		{
			name: "sink with no parent",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Sink(b, "out", "out", str, str2)
			},
			node:   "out",
			reason: "sink has no parent",
		},
		{
			name: "unknown store",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Node(b, "p", noop[string, string], topology.Parents("in"), topology.Stores("nope"))
			},
			node:   "p",
			reason: `uses unknown store "nope"`,
		},
		{
			name: "duplicate store",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Store(b, "st", str, str2)
				topology.Store(b, "st", topology.Int64(), topology.Int64())
			},
			node:   "st",
			reason: "duplicate store name",
		},
		{
			name: "empty store name",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Store(b, "", str, str2)
			},
			node:   "",
			reason: "store has an empty name",
		},
		{
			name: "value type mismatch between source and processor",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Node(b, "p", noop[string, int64], topology.Parents("in"))
			},
			node:   "p",
			reason: `takes [string, int64] but source "in" gives [string, string]`,
		},
		{
			name: "key type mismatch between source and sink",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", topology.Bytes(), topology.Bytes())
				topology.Sink(b, "out", "out", str, topology.Bytes(), topology.Parents("in"))
			},
			node:   "out",
			reason: `takes [string, []uint8] but source "in" gives [[]uint8, []uint8]`,
		},
		{
			name: "cycle between processors",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Node(b, "a", noop[string, string], topology.Parents("in", "b"))
				topology.Node(b, "b", noop[string, string], topology.Parents("a"))
			},
			node:   "a",
			reason: "a -> b -> a",
		},
		{
			name: "processor is its own parent",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Node(b, "a", noop[string, string], topology.Parents("in", "a"))
			},
			node:   "a",
			reason: "a -> a",
		},
		{
			name: "cycle not reachable from a source",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Node(b, "x", noop[string, string], topology.Parents("z"))
				topology.Node(b, "y", noop[string, string], topology.Parents("x"))
				topology.Node(b, "z", noop[string, string], topology.Parents("y"))
			},
			node:   "x",
			reason: "cycle: x -> y -> z -> x",
		},
		{
			name: "store no node uses",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Store(b, "used", str, str2)
				topology.Store(b, "forgotten", str, str2)
				topology.Node(b, "p", noop[string, string], topology.Parents("in"), topology.Stores("used"))
			},
			node:   "forgotten",
			reason: "store is used by no node",
		},
		{
			name: "sink with an unknown parent",
			build: func(b *topology.Builder) {
				topology.Source(b, "in", "in", str, str2)
				topology.Sink(b, "out", "out", str, str2, topology.Parents("in", "typo"))
			},
			node:   "out",
			reason: `unknown parent "typo"`,
		},
		{
			name:   "no source at all",
			build:  func(b *topology.Builder) {},
			node:   "",
			reason: "topology has no source",
		},
		{
			name: "only a store",
			build: func(b *topology.Builder) {
				topology.Store(b, "st", str, str2)
			},
			node:   "st",
			reason: "store is used by no node",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := topology.NewBuilder()
			tt.build(b)
			top, err := b.Build()
			require.Nil(t, top)
			var be *topology.BuildError
			require.ErrorAs(t, err, &be)
			require.Equal(t, tt.node, be.Node, "error: %v", err)
			require.Contains(t, be.Reason, tt.reason)
			require.Contains(t, be.Error(), tt.reason)
			require.Len(t, buildErrors(t, err), 1, "want exactly one error, got: %v", err)
		})
	}
}

func TestBuildReportsAllErrors(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	topology.Source(b, "again", "in", topology.String(), topology.String())
	topology.Store(b, "st", topology.String(), topology.String())
	topology.Store(b, "st", topology.String(), topology.String())
	topology.Node(b, "", noop[string, string], topology.Parents("in"))
	topology.Node(b, "dup", noop[string, string], topology.Parents("in"))
	topology.Node(b, "dup", noop[string, string], topology.Parents("in"))
	topology.Node(b, "orphan", noop[string, string])
	topology.Node(b, "lost", noop[string, string], topology.Parents("nowhere"))
	topology.Node(b, "bad-store", noop[string, string], topology.Parents("in"), topology.Stores("nope"))
	topology.Node(b, "typed", noop[int64, string], topology.Parents("in"))

	top, err := b.Build()
	require.Nil(t, top)
	errs := buildErrors(t, err)

	got := make(map[string]string)
	for _, e := range errs {
		got[e.Node] += e.Reason + ";"
	}
	want := map[string]string{
		"again":     "already read by source",
		"st":        "duplicate store name",
		"":          "processor has an empty name",
		"dup":       "duplicate node name",
		"orphan":    "processor has no parent",
		"lost":      `unknown parent "nowhere"`,
		"bad-store": `uses unknown store "nope"`,
		"typed":     "takes [int64, string]",
	}
	require.Len(t, errs, len(want), "errors: %v", err)
	for node, reason := range want {
		require.Contains(t, got, node, "errors: %v", err)
		require.Contains(t, got[node], reason)
		require.Contains(t, err.Error(), reason)
	}
}

// TestBuildCycleMessageIsTheCycle checks that the cycle error shows only the
// nodes on the cycle.
//
// Regression (was a bug in topology.go, validator.cycles, line 267,
// fixed since): the depth-first search reports the whole path from where it
// started, so a cycle a -> b -> a reached from source "in" is reported as
// "cycle: in -> a -> b -> a", naming a source that is not on the cycle (a
// source can never be on one). Fix: print path[slices.Index(path, c.name):].
func TestBuildCycleMessageIsTheCycle(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	topology.Node(b, "a", noop[string, string], topology.Parents("in", "b"))
	topology.Node(b, "b", noop[string, string], topology.Parents("a"))
	_, err := b.Build()
	errs := buildErrors(t, err)
	require.Len(t, errs, 1)
	require.Equal(t, "cycle: a -> b -> a", errs[0].Reason)
}

// TestBuildDoesNotChangeEarlierTopology checks that a built Topology is
// immutable, as its doc comment promises, even if the Builder goes on.
//
// Regression (was a bug in topology.go, Builder.Build and validator.edges,
// lines 137 and 245, fixed since): Build shares the Builder's *node
// values with the Topology and resolves edges by appending to
// node.children in place. Adding a processor under an existing source and
// calling Build again therefore rewires the first Topology: its Process runs
// the new processor and its Describe lists it, and a Topology in use by
// running tasks is written without synchronisation (a data race). A failed
// Build leaves the same half-wired children behind. Fix: have Build copy the
// nodes (and reset children) into the Topology instead of mutating the
// Builder's.
func TestBuildDoesNotChangeEarlierTopology(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	topology.Sink(b, "out", "out", topology.String(), topology.String(), topology.Parents(src.Name()))
	first, err := b.Build()
	require.NoError(t, err)
	before := first.Describe()

	lateRan := false
	topology.Node(b, "late", func(*topology.Call, topology.Record[string, string]) error {
		lateRan = true
		return nil
	}, topology.Parents(src.Name()))
	_, err = b.Build()
	require.NoError(t, err)

	require.Equal(t, before, first.Describe())
	require.NoError(t, first.Dispatch(context.Background(), newFakeRuntime(), &topology.Input{Topic: "in"}))
	require.False(t, lateRan, "a processor added after Build ran in the earlier Topology")
}

func TestBuildErrorMessage(t *testing.T) {
	t.Parallel()
	e := &topology.BuildError{Node: "p", Reason: "processor has no parent"}
	require.Equal(t, `topology: node "p": processor has no parent`, e.Error())
}

// A store written from one input and read from another (a table and the
// stream joined with it) is fed by both: the task owns partition p of the
// store and of both topics.
func TestStoreFedBySeveralSources(t *testing.T) {
	str, str2 := topology.String(), topology.String()
	b := topology.NewBuilder()
	topology.Source(b, "left", "l", str, str2)
	topology.Source(b, "right", "r", str, str2)
	topology.Store(b, "st", str, str2)
	topology.Node(b, "pr", noop[string, string], topology.Parents("right"), topology.Stores("st"))
	topology.Node(b, "pl", noop[string, string], topology.Parents("left"), topology.Stores("st"))
	topo, err := b.Build()
	require.NoError(t, err)
	require.Equal(t, []string{"l", "r"}, topo.StoreSources("st"))
}
