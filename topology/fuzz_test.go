package topology_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

// fuzzGraph is a small graph decoded from fuzz input. Every choice can
// produce an invalid graph (empty or duplicate names, missing topics,
// unknown parents and stores, sinks as parents, type mismatches, cycles,
// stores shared across sources), so the fuzzer explores both outcomes.
type fuzzGraph struct {
	stores []string
	nodes  []fuzzNode
}

type fuzzNode struct {
	kind    int // 0 source, 1 processor, 2 sink
	name    string
	topic   string
	int64s  bool // key and value are int64 rather than string
	parents []string
	stores  []string
}

// fuzzReader hands out input bytes, then zeros.
type fuzzReader struct{ data []byte }

func (r *fuzzReader) next() int {
	if len(r.data) == 0 {
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return int(b)
}

func decodeFuzzGraph(data []byte) fuzzGraph {
	r := &fuzzReader{data: data}
	var g fuzzGraph
	for range r.next() % 3 {
		g.stores = append(g.stores, []string{"st0", "st1", "st0", ""}[r.next()%4])
	}
	n := r.next() % 7
	g.nodes = make([]fuzzNode, n)
	parents := make([][]int, n) // resolved to names once all names are known
	for i := range g.nodes {
		nd := &g.nodes[i]
		nd.kind = r.next() % 3
		switch r.next() % 8 {
		case 6:
			nd.name = ""
		case 7:
			nd.name = "n0"
		default:
			nd.name = fmt.Sprintf("n%d", i)
		}
		if nd.kind != 1 {
			nd.topic = []string{"t0", "t1", "t2", ""}[r.next()%4]
		}
		nd.int64s = r.next()%4 == 0
		if nd.kind == 0 {
			continue
		}
		for range r.next() % 3 {
			parents[i] = append(parents[i], r.next()%(n+1))
		}
		if nd.kind == 1 {
			mask := r.next()
			for s := range 2 {
				if mask&(1<<s) != 0 {
					nd.stores = append(nd.stores, []string{"st0", "st1"}[s])
				}
			}
			if mask&4 != 0 {
				nd.stores = append(nd.stores, "missing")
			}
		}
	}
	for i, ps := range parents {
		for _, p := range ps {
			if p == n {
				g.nodes[i].parents = append(g.nodes[i].parents, "missing")
			} else {
				g.nodes[i].parents = append(g.nodes[i].parents, g.nodes[p].name)
			}
		}
	}
	return g
}

// build adds g to a new Builder. Each processor reads and writes its stores
// and sends one record to each of its children; if Build accepts the graph,
// none of that may fail.
func (g fuzzGraph) build() *topology.Builder {
	b := topology.NewBuilder()
	refs := make(map[string]topology.StoreRef[string, string])
	for _, s := range g.stores {
		refs[s] = topology.Store(b, s, topology.String(), topology.String())
	}
	sends := make([]func(ctx *topology.Call) error, len(g.nodes))
	children := func(i int) []int {
		var out []int
		for j, c := range g.nodes {
			if c.kind != 0 && slices.Contains(c.parents, g.nodes[i].name) {
				out = append(out, j)
			}
		}
		return out
	}
	body := func(i int, ctx *topology.Call) error {
		for _, s := range g.nodes[i].stores {
			ref := refs[s] // Build accepted the graph, so every store exists
			if _, _, err := ref.Get(ctx, "k"); err != nil {
				return err
			}
			if err := ref.Put(ctx, "k", "v"); err != nil {
				return err
			}
		}
		for _, j := range children(i) {
			if err := sends[j](ctx); err != nil {
				return err
			}
		}
		return nil
	}
	for i, nd := range g.nodes {
		switch {
		case nd.kind == 0 && nd.int64s:
			topology.Source(b, nd.name, nd.topic, topology.Int64(), topology.Int64())
		case nd.kind == 0:
			topology.Source(b, nd.name, nd.topic, topology.String(), topology.String())
		case nd.kind == 1 && nd.int64s:
			p := topology.Node(b, nd.name, func(ctx *topology.Call, _ topology.Record[int64, int64]) error {
				return body(i, ctx)
			}, topology.Parents(nd.parents...), topology.Stores(nd.stores...))
			sends[i] = func(ctx *topology.Call) error { return p.Send(ctx, 1, 2) }
		case nd.kind == 1:
			p := topology.Node(b, nd.name, func(ctx *topology.Call, _ topology.Record[string, string]) error {
				return body(i, ctx)
			}, topology.Parents(nd.parents...), topology.Stores(nd.stores...))
			sends[i] = func(ctx *topology.Call) error { return p.Send(ctx, "k", "v") }
		case nd.int64s:
			s := topology.Sink(b, nd.name, nd.topic, topology.Int64(), topology.Int64(), topology.Parents(nd.parents...))
			sends[i] = func(ctx *topology.Call) error { return s.Send(ctx, 1, 2) }
		default:
			s := topology.Sink(b, nd.name, nd.topic, topology.String(), topology.String(), topology.Parents(nd.parents...))
			sends[i] = func(ctx *topology.Call) error { return s.Send(ctx, "k", "v") }
		}
	}
	return b
}

func FuzzBuild(f *testing.F) {
	// stores, node count, then per node: kind, name, [topic], type,
	// [parent count, parents..., [store mask]].
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 0, 0, 1})                                                    // one source
	f.Add([]byte{0, 2, 0, 0, 0, 1, 2, 1, 0, 1, 1, 0})                                  // source -> sink
	f.Add([]byte{1, 0, 3, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1})                   // source -> processor with store
	f.Add([]byte{0, 3, 0, 0, 0, 1, 1, 1, 1, 2, 0, 2, 0, 1, 1, 2, 1, 1, 0})             // cycle
	f.Add([]byte{1, 0, 4, 0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1}) // store shared across sources
	f.Fuzz(func(t *testing.T, data []byte) {
		g := decodeFuzzGraph(data)
		top, err := g.build().Build()
		if err != nil {
			require.Nil(t, top)
			parts := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				parts = j.Unwrap()
			}
			for _, p := range parts {
				var be *topology.BuildError
				require.True(t, errors.As(p, &be), "not a *BuildError: %T %v", p, p)
				require.NotEmpty(t, be.Reason)
			}
			return
		}
		require.NotNil(t, top)
		require.NotEmpty(t, top.Describe())
		// A valid graph runs cleanly on a well-formed record from each source.
		for _, topic := range top.SourceTopics() {
			err := top.Dispatch(context.Background(), newFakeRuntime(), &topology.Input{
				Topic: topic, Key: make([]byte, 8), Value: make([]byte, 8),
			})
			require.NoError(t, err, "topic %s\n%s", topic, top.Describe())
		}
	})
}
