package topology_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

// timeTopology records, per record, what the Call says of time.
func timeTopology(t *testing.T, opts ...topology.SourceOpt[string, string]) (*topology.Topology, *[]string) {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String(), opts...)
	var seen []string
	topology.Node(b, "n", func(ctx *topology.Call, r topology.Record[string, string]) error {
		seen = append(seen, ctx.Timestamp().UTC().Format(time.RFC3339)+" "+ctx.StreamTime().UTC().Format(time.RFC3339)+" "+r.Timestamp.UTC().Format(time.RFC3339))
		if r.Value == "fail" {
			return errors.New("bad")
		}
		return nil
	}, topology.Parents(src.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	return topo, &seen
}

func TestDispatchTimestampAndStreamTime(t *testing.T) {
	t.Parallel()
	topo, seen := timeTopology(t)
	rt := newFakeRuntime()
	at := func(h int) time.Time { return time.Date(2024, 1, 1, h, 0, 0, 0, time.UTC) }
	in := &topology.Input{Topic: "in", Value: []byte("x"), Timestamp: at(5), StreamTime: at(3)}
	require.NoError(t, topo.Dispatch(context.Background(), rt, in))
	require.Equal(t, at(5), in.StreamTime, "a later record advances stream time")
	in = &topology.Input{Topic: "in", Value: []byte("x"), Timestamp: at(4), StreamTime: at(5)}
	require.NoError(t, topo.Dispatch(context.Background(), rt, in))
	require.Equal(t, at(5), in.StreamTime, "a late record does not move it back")
	in = &topology.Input{Topic: "in", Value: []byte("fail"), Timestamp: at(9), StreamTime: at(5)}
	require.Error(t, topo.Dispatch(context.Background(), rt, in))
	require.Equal(t, at(5), in.StreamTime, "a failed record does not move it")
	require.Equal(t, []string{
		"2024-01-01T05:00:00Z 2024-01-01T05:00:00Z 2024-01-01T05:00:00Z",
		"2024-01-01T04:00:00Z 2024-01-01T05:00:00Z 2024-01-01T04:00:00Z",
		"2024-01-01T09:00:00Z 2024-01-01T09:00:00Z 2024-01-01T09:00:00Z",
	}, *seen)
}

func TestWithTimestampExtractsFromTheValue(t *testing.T) {
	t.Parallel()
	topo, seen := timeTopology(t, topology.WithTimestamp(func(_ string, v string, rt time.Time) time.Time {
		ts, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return rt
		}
		return ts
	}))
	in := &topology.Input{Topic: "in", Value: []byte("2030-06-01T00:00:00Z"), Timestamp: time.Unix(0, 0)}
	require.NoError(t, topo.Dispatch(context.Background(), newFakeRuntime(), in))
	require.Equal(t, []string{"2030-06-01T00:00:00Z 2030-06-01T00:00:00Z 2030-06-01T00:00:00Z"}, *seen)
}

func TestPunctuateRunsWithStoresAndChildren(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	s := topology.Store(b, "s", topology.String(), topology.Int64())
	topology.Node(b, "n", func(ctx *topology.Call, r topology.Record[string, string]) error {
		return s.Put(ctx, r.Key, 1)
	}, topology.Parents(src.Name()), topology.Stores(s.Name()))
	out := topology.Sink(b, "out", "out", topology.String(), topology.Int64(), topology.Parents("p"))
	p := topology.Schedule(b, "p", time.Minute, topology.StreamTime, func(ctx *topology.Call, at time.Time) error {
		n, _, err := s.Get(ctx, "k")
		if err != nil {
			return err
		}
		require.Equal(t, int32(2), ctx.Partition())
		require.Equal(t, at, ctx.Timestamp())
		return out.Send(ctx, "k", n+at.Unix())
	}, topology.Stores(s.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	require.Equal(t, []topology.PunctuatorInfo{{Name: "p", Interval: time.Minute, Type: topology.StreamTime}}, topo.Punctuators())
	require.Contains(t, topo.Describe(), `punctuator "p" every 1m0s of stream-time -> out stores=s`)

	rt := newFakeRuntime()
	require.NoError(t, rt.Put("s", []byte("k"), []byte{0, 0, 0, 0, 0, 0, 0, 5}))
	require.NoError(t, topo.Punctuate(context.Background(), rt, p.Name(), 2, time.Unix(60, 0), time.Unix(61, 0)))
	require.Len(t, rt.emitted, 1)
	require.Equal(t, "out", rt.emitted[0].Topic)
	require.Equal(t, time.Unix(60, 0), rt.emitted[0].Timestamp)

	require.ErrorIs(t, topo.Punctuate(context.Background(), rt, "n", 0, time.Now(), time.Now()), topology.ErrNoPunctuator)
}

func TestPunctuateErrorsNameThePunctuator(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	topology.Sink(b, "copy", "out", topology.String(), topology.String(), topology.Parents("in"))
	s := topology.Store(b, "s", topology.String(), topology.String())
	topology.Schedule(b, "p", time.Second, topology.WallClock, func(ctx *topology.Call, _ time.Time) error {
		return errors.New("boom")
	}, topology.Stores(s.Name()))
	topology.Schedule(b, "sneaky", time.Second, topology.WallClock, func(ctx *topology.Call, _ time.Time) error {
		_, _, err := s.Get(ctx, "k") // not declared
		return err
	})
	topo, err := b.Build()
	require.NoError(t, err)
	err = topo.Punctuate(context.Background(), newFakeRuntime(), "p", 0, time.Now(), time.Now())
	var pe *topology.ProcessError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "p", pe.Node)
	err = topo.Punctuate(context.Background(), newFakeRuntime(), "sneaky", 0, time.Now(), time.Now())
	var ue *topology.UsageError
	require.ErrorAs(t, err, &ue)
}

func TestBuildRejectsBadPunctuators(t *testing.T) {
	t.Parallel()
	cases := map[string]func(b *topology.Builder){
		"punctuator interval must be positive": func(b *topology.Builder) {
			topology.Schedule(b, "p", 0, topology.WallClock, func(*topology.Call, time.Time) error { return nil })
		},
		"punctuator has no function": func(b *topology.Builder) {
			topology.Schedule(b, "p", time.Second, topology.WallClock, nil)
		},
		"unknown punctuation type": func(b *topology.Builder) {
			topology.Schedule(b, "p", time.Second, topology.PunctuationType(7), func(*topology.Call, time.Time) error { return nil })
		},
		"punctuator cannot have parents": func(b *topology.Builder) {
			topology.Schedule(b, "p", time.Second, topology.WallClock, func(*topology.Call, time.Time) error { return nil }, topology.Parents("in"))
		},
	}
	for want, add := range cases {
		b := topology.NewBuilder()
		topology.Source(b, "in", "in", topology.String(), topology.String())
		topology.Sink(b, "copy", "out", topology.String(), topology.String(), topology.Parents("in"))
		add(b)
		_, err := b.Build()
		require.ErrorContains(t, err, want)
	}
}

func TestRepartitionNamesAndForApplication(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	rep := topology.Repartition(b, "byval", topology.String(), topology.String(), topology.Parents("rekey"), topology.Partitions(4))
	topology.Node(b, "rekey", func(ctx *topology.Call, r topology.Record[string, string]) error {
		return rep.Send(ctx, r.Value, r.Key)
	}, topology.Parents(src.Name()))
	topology.Sink(b, "out", "out", topology.String(), topology.String(), topology.Parents(rep.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	require.Equal(t, []topology.RepartitionInfo{{Name: "byval", Topic: "byval-repartition", Partitions: 4}}, topo.Repartitions())
	require.Equal(t, []string{"out"}, topo.SinkTopics(), "a repartition topic is not a sink topic")

	bound, err := topo.ForApplication("app")
	require.NoError(t, err)
	require.Equal(t, "app-byval-repartition", topology.RepartitionTopic("app", "byval"))
	require.Equal(t, []string{"in", "app-byval-repartition"}, bound.SourceTopics())
	require.True(t, bound.IsRepartition("app-byval-repartition"))
	require.False(t, bound.IsRepartition("in"))
	require.Equal(t, []string{"in", "byval-repartition"}, topo.SourceTopics(), "ForApplication leaves the topology as it was")

	// The sink half produces to the bound name, keyed by the new key.
	rt := newFakeRuntime()
	require.NoError(t, bound.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: []byte("v")}))
	require.Len(t, rt.emitted, 1)
	require.Equal(t, "app-byval-repartition", rt.emitted[0].Topic)
	require.Equal(t, "v", string(rt.emitted[0].Key))
	// And the source half reads it.
	require.NoError(t, bound.Dispatch(context.Background(), rt, &topology.Input{Topic: "app-byval-repartition", Key: []byte("v"), Value: []byte("k")}))
	require.Equal(t, "out", rt.emitted[1].Topic)
}
