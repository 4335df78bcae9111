package topology_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

func mustBuild(t testing.TB, b *topology.Builder) *topology.Topology {
	t.Helper()
	top, err := b.Build()
	require.NoError(t, err)
	return top
}

var ts0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// orderPipeline builds orders -> validate -> sum (store totals) -> sink
// "out" on topic "totals". sum forwards the input headers with SendRecord.
func orderPipeline(t testing.TB) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	topology.Source(b, "orders", "orders", topology.String(), topology.JSON[order]())
	totals := topology.Store(b, "totals", topology.String(), topology.JSON[total]())
	out := topology.Sink(b, "out", "totals", topology.String(), topology.JSON[total](), topology.Parents("sum"))
	sum := topology.Node(b, "sum", func(ctx *topology.Call, r topology.Record[string, order]) error {
		cur, _, err := totals.Get(ctx, r.Value.Customer)
		if err != nil {
			return fmt.Errorf("reading total: %w", err)
		}
		cur.Customer = r.Value.Customer
		cur.Orders++
		cur.Amount += r.Value.Amount
		if err := totals.Put(ctx, r.Value.Customer, cur); err != nil {
			return fmt.Errorf("writing total: %w", err)
		}
		return out.SendRecord(ctx, topology.Record[string, total]{
			Key: cur.Customer, Value: cur, Timestamp: r.Timestamp, Headers: r.Headers,
		})
	}, topology.Parents("validate"), topology.Stores(totals.Name()))
	topology.Node(b, "validate", func(ctx *topology.Call, r topology.Record[string, order]) error {
		if r.Value.Amount <= 0 {
			return fmt.Errorf("order %s: amount %d is not positive", r.Value.ID, r.Value.Amount)
		}
		return sum.Send(ctx, r.Key, r.Value)
	}, topology.Parents("orders"))
	return mustBuild(t, b)
}

func TestProcessFlowsToSink(t *testing.T) {
	t.Parallel()
	top := orderPipeline(t)
	rt := newFakeRuntime()
	ctx := context.Background()

	for i, amount := range []int64{5, 7} {
		err := top.Dispatch(ctx, rt, &topology.Input{
			Topic: "orders", Partition: 3, Offset: int64(i),
			Key:       []byte("o1"),
			Value:     fmt.Appendf(nil, `{"id":"o%d","customer":"c1","amount":%d}`, i, amount),
			Timestamp: ts0.Add(time.Duration(i) * time.Second),
		})
		require.NoError(t, err)
	}

	require.Equal(t, []emitted{
		{Topic: "totals", Key: []byte("c1"), Value: []byte(`{"customer":"c1","orders":1,"amount":5}`), Timestamp: ts0},
		{Topic: "totals", Key: []byte("c1"), Value: []byte(`{"customer":"c1","orders":2,"amount":12}`), Timestamp: ts0.Add(time.Second)},
	}, rt.emitted)
	require.JSONEq(t, `{"customer":"c1","orders":2,"amount":12}`, string(rt.stores["totals"]["c1"]))
}

func TestProcessPassThrough(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.Bytes(), topology.Bytes())
	topology.Sink(b, "copy", "out", topology.Bytes(), topology.Bytes(), topology.Parents(src.Name()))
	top := mustBuild(t, b)

	rt := newFakeRuntime()
	hdrs := []topology.Header{{Key: "trace", Value: []byte("abc")}}
	require.NoError(t, top.Dispatch(context.Background(), rt, &topology.Input{
		Topic: "in", Key: []byte("k"), Value: []byte("v"), Timestamp: ts0, Headers: hdrs,
	}))
	require.Equal(t, []emitted{{Topic: "out", Key: []byte("k"), Value: []byte("v"), Timestamp: ts0, Headers: hdrs}}, rt.emitted)
}

func TestProcessContext(t *testing.T) {
	t.Parallel()
	type ctxKey struct{}
	type seen struct {
		node, topic string
		partition   int32
		offset      int64
		value       any
	}
	var log []seen
	record := func(ctx *topology.Call) {
		log = append(log, seen{ctx.Node(), ctx.Topic(), ctx.Partition(), ctx.Offset(), ctx.Context().Value(ctxKey{})})
	}

	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	out := topology.Sink(b, "out", "out", topology.String(), topology.String(), topology.Parents("outer"))
	inner := topology.Node(b, "inner", func(ctx *topology.Call, r topology.Record[string, string]) error {
		record(ctx)
		return nil
	}, topology.Parents("outer"))
	topology.Node(b, "outer", func(ctx *topology.Call, r topology.Record[string, string]) error {
		record(ctx)
		// A child with its own timestamp must not change the parent's.
		if err := out.SendRecord(ctx, topology.Record[string, string]{Key: "a", Value: "1", Timestamp: ts0.Add(time.Hour)}); err != nil {
			return err
		}
		if err := inner.Send(ctx, r.Key, r.Value); err != nil {
			return err
		}
		record(ctx) // back at outer after the child returned
		return out.Send(ctx, "b", "2")
	}, topology.Parents("in"))
	top := mustBuild(t, b)

	rt := newFakeRuntime()
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	require.NoError(t, top.Dispatch(ctx, rt, &topology.Input{Topic: "in", Partition: 7, Offset: 42, Timestamp: ts0}))

	require.Equal(t, []seen{
		{"outer", "in", 7, 42, "v"},
		{"inner", "in", 7, 42, "v"},
		{"outer", "in", 7, 42, "v"},
	}, log)
	require.Len(t, rt.emitted, 2)
	require.Equal(t, ts0.Add(time.Hour), rt.emitted[0].Timestamp)
	require.Equal(t, ts0, rt.emitted[1].Timestamp, "Send after a child ran must use the input timestamp")
}

func TestProcessFanOut(t *testing.T) {
	t.Parallel()
	var calls []string
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	a := topology.Sink(b, "a", "topic-a", topology.String(), topology.String(), topology.Parents("p1"))
	bb := topology.Sink(b, "b", "topic-b", topology.String(), topology.String(), topology.Parents("p1"))
	topology.Node(b, "p1", func(ctx *topology.Call, r topology.Record[string, string]) error {
		calls = append(calls, "p1")
		if err := a.Send(ctx, r.Key, r.Value+"-a"); err != nil {
			return err
		}
		return bb.Send(ctx, r.Key, r.Value+"-b")
	}, topology.Parents(src.Name()))
	topology.Sink(b, "copy", "topic-copy", topology.String(), topology.String(), topology.Parents(src.Name()))
	topology.Node(b, "p2", func(ctx *topology.Call, r topology.Record[string, string]) error {
		calls = append(calls, "p2")
		return nil
	}, topology.Parents(src.Name()))
	top := mustBuild(t, b)

	rt := newFakeRuntime()
	require.NoError(t, top.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: []byte("v")}))
	require.Equal(t, []string{"p1", "p2"}, calls)
	var topics, values []string
	for _, e := range rt.emitted {
		topics = append(topics, e.Topic)
		values = append(values, string(e.Value))
	}
	require.Equal(t, []string{"topic-a", "topic-b", "topic-copy"}, topics)
	require.Equal(t, []string{"v-a", "v-b", "v"}, values)
}

func TestProcessFanOutStopsAtFirstError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	var calls []string
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	for _, name := range []string{"p1", "p2", "p3"} {
		topology.Node(b, name, func(*topology.Call, topology.Record[string, string]) error {
			calls = append(calls, name)
			if name == "p2" {
				return boom
			}
			return nil
		}, topology.Parents("in"))
	}
	top := mustBuild(t, b)

	err := top.Dispatch(context.Background(), newFakeRuntime(), &topology.Input{Topic: "in"})
	var pe *topology.ProcessError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "p2", pe.Node)
	require.Equal(t, []string{"p1", "p2"}, calls)
}

func TestProcessStoreReadsOwnWrites(t *testing.T) {
	t.Parallel()
	type step struct {
		op    string
		value int64
		ok    bool
	}
	var steps []step
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.Int64())
	counts := topology.Store(b, "counts", topology.String(), topology.Int64())
	topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, int64]) error {
		get := func() error {
			v, ok, err := counts.Get(ctx, r.Key)
			steps = append(steps, step{"get", v, ok})
			return err
		}
		if err := get(); err != nil {
			return err
		}
		if err := counts.Put(ctx, r.Key, r.Value); err != nil {
			return err
		}
		if err := get(); err != nil {
			return err
		}
		if err := counts.Delete(ctx, r.Key); err != nil {
			return err
		}
		if err := get(); err != nil {
			return err
		}
		return counts.Put(ctx, r.Key, r.Value*2)
	}, topology.Parents("in"), topology.Stores(counts.Name()))
	top := mustBuild(t, b)

	rt := newFakeRuntime()
	v, err := topology.Int64().Encode(21)
	require.NoError(t, err)
	require.NoError(t, top.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: v}))
	require.Equal(t, []step{{"get", 0, false}, {"get", 21, true}, {"get", 0, false}}, steps)
	require.Equal(t, []byte{0, 0, 0, 0, 0, 0, 0, 42}, rt.stores["counts"]["k"])
}

// TestStoreRange ranges over a half-open interval of encoded keys, stops
// when fn says so, and reads the same bytes through Raw.
func TestStoreRange(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.Int64())
	st := topology.Store(b, "s", topology.String(), topology.Int64())
	var got []string
	topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, int64]) error {
		for _, k := range []string{"a", "b1", "b2", "b3", "c"} {
			if err := st.Put(ctx, k, int64(len(k))); err != nil {
				return err
			}
		}
		err := st.Range(ctx, []byte("b"), []byte("c"), func(k string, v int64) bool {
			got = append(got, fmt.Sprintf("%s=%d", k, v))
			return k != "b2"
		})
		if err != nil {
			return err
		}
		err = st.Range(ctx, nil, []byte("b"), func(k string, _ int64) bool {
			got = append(got, k)
			return true
		})
		if err != nil {
			return err
		}
		raw, ok, err := st.Raw().Get(ctx, []byte("c"))
		got = append(got, fmt.Sprintf("%v %v", raw, ok))
		return err
	}, topology.Parents("in"), topology.Stores(st.Name()))
	top := mustBuild(t, b)
	v, err := topology.Int64().Encode(1)
	require.NoError(t, err)
	require.NoError(t, top.Dispatch(context.Background(), newFakeRuntime(), &topology.Input{Topic: "in", Key: []byte("k"), Value: v}))
	require.Equal(t, []string{"b1=2", "b2=2", "a", "[0 0 0 0 0 0 0 1] true"}, got)
}

func TestProcessDecodeError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		key   []byte
		value []byte
		part  string
	}{
		{name: "key too short", key: []byte{1, 2, 3}, value: []byte(`{}`), part: "key"},
		{name: "nil key", key: nil, value: []byte(`{}`), part: "key"},
		{name: "value not json", key: make([]byte, 8), value: []byte(`{`), part: "value"},
		{name: "value wrong json type", key: make([]byte, 8), value: []byte(`[1]`), part: "value"},
		{name: "both bad reports key", key: []byte{1}, value: []byte(`{`), part: "key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ran := false
			b := topology.NewBuilder()
			topology.Source(b, "src", "in", topology.Int64(), topology.JSON[order]())
			topology.Node(b, "p", func(*topology.Call, topology.Record[int64, order]) error {
				ran = true
				return nil
			}, topology.Parents("src"))
			top := mustBuild(t, b)

			err := top.Dispatch(context.Background(), newFakeRuntime(), &topology.Input{Topic: "in", Key: tt.key, Value: tt.value})
			var de *topology.DecodeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tt.part, de.Part)
			require.Equal(t, "src", de.Node)
			require.Equal(t, "in", de.Topic)
			require.Error(t, errors.Unwrap(err))
			require.Contains(t, err.Error(), "decoding "+tt.part)
			require.True(t, topology.IsBadRecord(err))
			require.False(t, ran, "a processor ran on a record that failed to decode")
		})
	}
}

// failing is a Serde whose Encode always fails.
func failing[T any](err error) topology.Serde[T] {
	return topology.SerdeFuncs[T]{
		EncodeFunc: func(T) ([]byte, error) { return nil, err },
		DecodeFunc: func([]byte) (T, error) { var zero T; return zero, err },
	}
}

func TestProcessError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	str := topology.String()
	tests := []struct {
		name  string
		build func(b *topology.Builder)
		node  string // ProcessError.Node
		is    error  // errors.Is target
	}{
		{
			name: "processor returns an error",
			build: func(b *topology.Builder) {
				topology.Node(b, "p", func(*topology.Call, topology.Record[string, string]) error { return boom }, topology.Parents("in"))
			},
			node: "p",
			is:   boom,
		},
		{
			name: "nested child error returned as is",
			build: func(b *topology.Builder) {
				inner := topology.Node(b, "inner", func(*topology.Call, topology.Record[string, string]) error { return boom }, topology.Parents("outer"))
				topology.Node(b, "outer", func(ctx *topology.Call, r topology.Record[string, string]) error {
					return inner.Send(ctx, r.Key, r.Value)
				}, topology.Parents("in"))
			},
			node: "inner",
			is:   boom,
		},
		{
			name: "three levels deep",
			build: func(b *topology.Builder) {
				c := topology.Node(b, "c", func(*topology.Call, topology.Record[string, string]) error { return boom }, topology.Parents("b"))
				bn := topology.Node(b, "b", func(ctx *topology.Call, r topology.Record[string, string]) error {
					return c.Send(ctx, r.Key, r.Value)
				}, topology.Parents("a"))
				topology.Node(b, "a", func(ctx *topology.Call, r topology.Record[string, string]) error {
					return bn.Send(ctx, r.Key, r.Value)
				}, topology.Parents("in"))
			},
			node: "c",
			is:   boom,
		},
		{
			name: "sink encode error via processor",
			build: func(b *topology.Builder) {
				out := topology.Sink(b, "out", "out", str, failing[string](boom), topology.Parents("p"))
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					return out.Send(ctx, r.Key, r.Value)
				}, topology.Parents("in"))
			},
			node: "out",
			is:   boom,
		},
		{
			name: "sink key encode error in pass-through",
			build: func(b *topology.Builder) {
				topology.Sink(b, "out", "out", failing[string](boom), str, topology.Parents("in"))
			},
			node: "out",
			is:   boom,
		},
		{
			name: "store encode error",
			build: func(b *topology.Builder) {
				st := topology.Store(b, "st", str, failing[string](boom))
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					return st.Put(ctx, r.Key, r.Value)
				}, topology.Parents("in"), topology.Stores("st"))
			},
			node: "p",
			is:   boom,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := topology.NewBuilder()
			topology.Source(b, "in", "in", str, str)
			tt.build(b)
			top := mustBuild(t, b)

			rt := newFakeRuntime()
			err := top.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: []byte("v")})
			var pe *topology.ProcessError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.node, pe.Node, "error: %v", err)
			require.ErrorIs(t, err, tt.is)
			require.True(t, topology.IsBadRecord(err))
			require.Contains(t, err.Error(), fmt.Sprintf("node %q", tt.node))
			var re *topology.RuntimeError
			require.False(t, errors.As(err, &re))
			require.Empty(t, rt.emitted)
			require.Empty(t, rt.stores, "nothing may reach the runtime's stores")
		})
	}
}

// TestUndeclaredAccessIsAUsageError: a node that uses a store it did not
// declare, or sends to a node that does not list it as a parent, has a bug
// in its code, not a bad input. Every record would fail the same way, so it
// must not be dead-lettered record by record: Dispatch returns a
// *UsageError (not a bad record) naming the node and the store or child,
// even when the processor swallows the error. Before, it was a
// *ProcessError and IsBadRecord was true.
func TestUndeclaredAccessIsAUsageError(t *testing.T) {
	t.Parallel()
	str := topology.String()
	tests := []struct {
		name  string
		build func(b *topology.Builder)
		want  topology.UsageError
	}{
		{
			name: "undeclared store",
			build: func(b *topology.Builder) {
				st := topology.Store(b, "st", str, str)
				topology.Node(b, "owner", noop[string, string], topology.Parents("in"), topology.Stores("st"))
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					return st.Put(ctx, r.Key, r.Value)
				}, topology.Parents("in"))
			},
			want: topology.UsageError{Node: "p", Store: "st"},
		},
		{
			name: "undeclared store read, error swallowed",
			build: func(b *topology.Builder) {
				st := topology.Store(b, "st", str, str)
				topology.Node(b, "owner", noop[string, string], topology.Parents("in"), topology.Stores("st"))
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					_, _, _ = st.Get(ctx, r.Key)
					return nil
				}, topology.Parents("in"))
			},
			want: topology.UsageError{Node: "p", Store: "st"},
		},
		{
			name: "undeclared store delete",
			build: func(b *topology.Builder) {
				st := topology.Store(b, "st", str, str)
				topology.Node(b, "owner", noop[string, string], topology.Parents("in"), topology.Stores("st"))
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					return st.Delete(ctx, r.Key)
				}, topology.Parents("in"))
			},
			want: topology.UsageError{Node: "p", Store: "st"},
		},
		{
			name: "send to a sink that is not a child",
			build: func(b *topology.Builder) {
				out := topology.Sink(b, "out", "out", str, str, topology.Parents("other"))
				topology.Node(b, "other", noop[string, string], topology.Parents("in"))
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					return out.Send(ctx, r.Key, r.Value)
				}, topology.Parents("in"))
			},
			want: topology.UsageError{Node: "p", Child: "out"},
		},
		{
			name: "send to a processor that is not a child",
			build: func(b *topology.Builder) {
				q := topology.Node(b, "q", noop[string, string], topology.Parents("in"))
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					return q.Send(ctx, r.Key, r.Value)
				}, topology.Parents("in"))
			},
			want: topology.UsageError{Node: "p", Child: "q"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := topology.NewBuilder()
			topology.Source(b, "in", "in", str, str)
			tt.build(b)
			top := mustBuild(t, b)

			rt := newFakeRuntime()
			err := top.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: []byte("v")})
			var ue *topology.UsageError
			require.ErrorAs(t, err, &ue, "error: %v", err)
			require.Equal(t, tt.want, *ue)
			require.ErrorIs(t, err, topology.ErrUndeclared)
			require.False(t, topology.IsBadRecord(err), "a programming error is not a bad record")
			require.Contains(t, err.Error(), fmt.Sprintf("node %q", tt.want.Node))
			require.Empty(t, rt.emitted)
			require.Empty(t, rt.stores)
		})
	}
}

// TestProcessErrorNamesInnermostWhenWrapped checks that a child's failure
// keeps naming the child when the parent wraps it with context, as the house
// style asks every caller to do.
//
// Regression (was a bug in context.go, Context.run, line 129,
// fixed since): run recognises a child's *ProcessError with a plain type assertion,
// so once the parent returns fmt.Errorf("sending: %w", err) the error is
// wrapped a second time as ProcessError{Node: "outer"}, and errors.As finds
// the outer node first. Fix: use errors.As(err, &pe) in run and return err
// unchanged when it already carries a *ProcessError.
func TestProcessErrorNamesInnermostWhenWrapped(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	inner := topology.Node(b, "inner", func(*topology.Call, topology.Record[string, string]) error { return boom }, topology.Parents("outer"))
	topology.Node(b, "outer", func(ctx *topology.Call, r topology.Record[string, string]) error {
		if err := inner.Send(ctx, r.Key, r.Value); err != nil {
			return fmt.Errorf("sending to inner: %w", err)
		}
		return nil
	}, topology.Parents("in"))
	top := mustBuild(t, b)

	err := top.Dispatch(context.Background(), newFakeRuntime(), &topology.Input{Topic: "in"})
	var pe *topology.ProcessError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "inner", pe.Node, "error: %v", err)
	require.ErrorIs(t, err, boom)
}

func TestProcessRuntimeError(t *testing.T) {
	t.Parallel()
	rtErr := errors.New("disk on fire")
	boom := errors.New("boom")
	str := topology.String()
	tests := []struct {
		name  string
		fault func(rt *fakeRuntime)
		build func(b *topology.Builder, st topology.StoreRef[string, string])
	}{
		{
			name:  "put fails, processor swallows",
			fault: func(rt *fakeRuntime) { rt.putErr = rtErr },
			build: func(b *topology.Builder, st topology.StoreRef[string, string]) {
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					_ = st.Put(ctx, r.Key, r.Value)
					return nil
				}, topology.Parents("in"), topology.Stores("st"))
			},
		},
		{
			name:  "put fails, processor returns it wrapped",
			fault: func(rt *fakeRuntime) { rt.putErr = rtErr },
			build: func(b *topology.Builder, st topology.StoreRef[string, string]) {
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					if err := st.Put(ctx, r.Key, r.Value); err != nil {
						return fmt.Errorf("saving: %w", err)
					}
					return nil
				}, topology.Parents("in"), topology.Stores("st"))
			},
		},
		{
			name:  "put fails, processor returns another error",
			fault: func(rt *fakeRuntime) { rt.putErr = rtErr },
			build: func(b *topology.Builder, st topology.StoreRef[string, string]) {
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					_ = st.Put(ctx, r.Key, r.Value)
					return boom
				}, topology.Parents("in"), topology.Stores("st"))
			},
		},
		{
			name:  "get fails, processor swallows",
			fault: func(rt *fakeRuntime) { rt.getErr = rtErr },
			build: func(b *topology.Builder, st topology.StoreRef[string, string]) {
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					_, _, _ = st.Get(ctx, r.Key)
					return nil
				}, topology.Parents("in"), topology.Stores("st"))
			},
		},
		{
			name:  "delete fails, processor swallows",
			fault: func(rt *fakeRuntime) { rt.deleteErr = rtErr },
			build: func(b *topology.Builder, st topology.StoreRef[string, string]) {
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					_ = st.Delete(ctx, r.Key)
					return nil
				}, topology.Parents("in"), topology.Stores("st"))
			},
		},
		{
			name:  "emit fails, processor swallows",
			fault: func(rt *fakeRuntime) { rt.emitErr = rtErr },
			build: func(b *topology.Builder, _ topology.StoreRef[string, string]) {
				out := topology.Sink(b, "out", "out", str, str, topology.Parents("p"))
				topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, string]) error {
					_ = out.Send(ctx, r.Key, r.Value)
					return nil
				}, topology.Parents("in"))
			},
		},
		{
			name:  "emit fails in pass-through sink",
			fault: func(rt *fakeRuntime) { rt.emitErr = rtErr },
			build: func(b *topology.Builder, _ topology.StoreRef[string, string]) {
				topology.Sink(b, "out", "out", str, str, topology.Parents("in"))
			},
		},
		{
			name:  "nested child swallows, parent fails",
			fault: func(rt *fakeRuntime) { rt.putErr = rtErr },
			build: func(b *topology.Builder, st topology.StoreRef[string, string]) {
				inner := topology.Node(b, "inner", func(ctx *topology.Call, r topology.Record[string, string]) error {
					_ = st.Put(ctx, r.Key, r.Value)
					return nil
				}, topology.Parents("outer"), topology.Stores("st"))
				topology.Node(b, "outer", func(ctx *topology.Call, r topology.Record[string, string]) error {
					if err := inner.Send(ctx, r.Key, r.Value); err != nil {
						return err
					}
					return boom
				}, topology.Parents("in"), topology.Stores("st"))
			},
		},
		{
			name:  "first child swallows, second child fails",
			fault: func(rt *fakeRuntime) { rt.emitErr = rtErr },
			build: func(b *topology.Builder, _ topology.StoreRef[string, string]) {
				topology.Sink(b, "out", "out", str, str, topology.Parents("p1"))
				out := topology.Sink(b, "out2", "out", str, str, topology.Parents("p1"))
				topology.Node(b, "p1", func(ctx *topology.Call, r topology.Record[string, string]) error {
					_ = out.Send(ctx, r.Key, r.Value)
					return nil
				}, topology.Parents("in"))
				topology.Node(b, "p2", func(*topology.Call, topology.Record[string, string]) error { return boom }, topology.Parents("in"))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := topology.NewBuilder()
			topology.Source(b, "in", "in", str, str)
			st := topology.Store(b, "st", str, str)
			tt.build(b, st)
			topology.Node(b, "owner", noop[string, string], topology.Parents("in"), topology.Stores("st"))
			top := mustBuild(t, b)

			rt := newFakeRuntime()
			tt.fault(rt)
			err := top.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: []byte("v")})
			var re *topology.RuntimeError
			require.ErrorAs(t, err, &re)
			require.ErrorIs(t, err, rtErr)
			require.False(t, topology.IsBadRecord(err), "a runtime failure is not the record's fault: %v", err)
			var pe *topology.ProcessError
			require.False(t, errors.As(err, &pe), "a runtime failure must not be reported as a ProcessError: %v", err)
			require.Contains(t, err.Error(), rtErr.Error())
		})
	}
}

func TestProcessNoSource(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	top := mustBuild(t, b)

	for _, topic := range []string{"nope", "", "IN"} {
		err := top.Dispatch(context.Background(), newFakeRuntime(), &topology.Input{Topic: topic})
		require.ErrorIs(t, err, topology.ErrNoSource, "topic %q", topic)
		require.Contains(t, err.Error(), fmt.Sprintf("%q", topic))
		require.False(t, topology.IsBadRecord(err))
	}
}

// TestProcessConcurrent runs one Topology from many goroutines, each with
// its own Runtime, as tasks do; -race checks that no per-record state is
// shared.
func TestProcessConcurrent(t *testing.T) {
	t.Parallel()
	top := orderPipeline(t)
	const workers, records = 8, 50
	rts := make([]*fakeRuntime, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		rts[w] = newFakeRuntime()
		wg.Go(func() {
			for i := range records {
				err := top.Dispatch(context.Background(), rts[w], &topology.Input{
					Topic: "orders", Partition: int32(w), Offset: int64(i),
					Value: []byte(`{"id":"o","customer":"c","amount":1}`),
				})
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for w := range workers {
		require.NoError(t, errs[w])
		require.Len(t, rts[w].emitted, records)
		require.JSONEq(t, fmt.Sprintf(`{"customer":"c","orders":%d,"amount":%d}`, records, records), string(rts[w].stores["totals"]["c"]))
	}
}

// TestProcessNilInterfaceValue checks that a record whose decoded value is a
// nil interface reaches the processor and the sink instead of panicking.
//
// Regression (was a bug in builder.go, lines 150, 187 and 191,
// fixed since): the processor and sink handlers unbox with key.(K) and value.(V).
// When K or V is an interface type (JSON[any], a Serde[error], ...) and the
// value is nil, for example the JSON value `null`, the single-result type
// assertion panics ("interface conversion: interface is nil, not
// interface {}"), so a valid record crashes the caller instead of being
// processed. Fix: unbox with the comma-ok form, e.g. a helper
// `func unbox[T any](x any) T { v, _ := x.(T); return v }`, which yields
// T's zero value for nil.
func TestProcessNilInterfaceValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(b *topology.Builder, got *[]any)
	}{
		{
			name: "processor",
			build: func(b *topology.Builder, got *[]any) {
				topology.Node(b, "p", func(_ *topology.Call, r topology.Record[string, any]) error {
					*got = append(*got, r.Value)
					return nil
				}, topology.Parents("in"))
			},
		},
		{
			name: "pass-through sink",
			build: func(b *topology.Builder, _ *[]any) {
				topology.Sink(b, "out", "out", topology.String(), topology.JSON[any](), topology.Parents("in"))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []any
			b := topology.NewBuilder()
			topology.Source(b, "in", "in", topology.String(), topology.JSON[any]())
			tt.build(b, &got)
			top := mustBuild(t, b)

			rt := newFakeRuntime()
			var err error
			require.NotPanics(t, func() {
				err = top.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: []byte("null")})
			})
			require.NoError(t, err)
			if tt.name == "processor" {
				require.Equal(t, []any{nil}, got)
			} else {
				require.Len(t, rt.emitted, 1)
				require.Nil(t, rt.emitted[0].Value, "JSON null goes out as a tombstone")
			}
		})
	}
}

// TestProcessTombstone: a tombstone (nil value) on a JSON source is a
// delete reaching the processor as a nil value, not a bad record. Before,
// JSON's Decode(nil) failed and Process returned a *DecodeError, so the
// record was dead-lettered. A nil value put to a store deletes the key, and
// a nil value sent to a sink is produced as a tombstone.
func TestProcessTombstone(t *testing.T) {
	t.Parallel()
	str := topology.String()
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", str, topology.JSON[*order]())
	latest := topology.Store(b, "latest", str, topology.JSON[*order]())
	out := topology.Sink(b, "out", "out", str, topology.JSON[*order](), topology.Parents("p"))
	var seen []*order
	topology.Node(b, "p", func(ctx *topology.Call, r topology.Record[string, *order]) error {
		seen = append(seen, r.Value)
		if err := latest.Put(ctx, r.Key, r.Value); err != nil {
			return err
		}
		return out.Send(ctx, r.Key, r.Value)
	}, topology.Parents(src.Name()), topology.Stores(latest.Name()))
	top := mustBuild(t, b)

	rt := newFakeRuntime()
	require.NoError(t, top.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: []byte(`{"id":"o1"}`)}))
	require.Contains(t, rt.stores["latest"], "k")
	err := top.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: nil})
	require.NoError(t, err, "a tombstone is not a bad record")
	require.Equal(t, []*order{{ID: "o1"}, nil}, seen)
	require.NotContains(t, rt.stores["latest"], "k", "putting a tombstone deletes")
	require.Len(t, rt.emitted, 2)
	require.Nil(t, rt.emitted[1].Value, "sent on as a tombstone")
	require.Equal(t, "k", string(rt.emitted[1].Key))
}
