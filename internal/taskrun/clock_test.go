package taskrun

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

func clockTopology(t *testing.T) *topology.Topology {
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	topology.Sink(b, "copy", "out", topology.String(), topology.String(), topology.Parents("in"))
	nop := func(*topology.Call, time.Time) error { return nil }
	topology.Schedule(b, "minute", time.Minute, topology.StreamTime, nop)
	topology.Schedule(b, "wall", 10*time.Second, topology.WallClock, nop)
	topo, err := b.Build()
	require.NoError(t, err)
	return topo
}

func TestStreamPunctuatorFiresOncePerCrossing(t *testing.T) {
	t.Parallel()
	c := NewClock(clockTopology(t), nil, time.Unix(0, 0))
	advance := func(sec int64) []firing {
		c.Streams[0] = time.Unix(sec, 0)
		return c.dueStream()
	}
	require.Empty(t, advance(90), "the first record sets the boundary")
	require.Empty(t, advance(119))
	require.Equal(t, []firing{{"minute", time.Unix(120, 0), -1}}, advance(120))
	require.Empty(t, advance(121))
	require.Equal(t, []firing{{"minute", time.Unix(600, 0), -1}}, advance(601), "several boundaries crossed: one firing, for the last")
}

func TestClockFromStoredStreamTimeDoesNotRefire(t *testing.T) {
	t.Parallel()
	c := NewClock(clockTopology(t), []time.Time{time.Unix(150, 0)}, time.Unix(0, 0))
	c.Streams[0] = time.Unix(170, 0)
	require.Empty(t, c.dueStream(), "the interval stream time was in at start already fired")
	c.Streams[0] = time.Unix(180, 0)
	require.Len(t, c.dueStream(), 1)
}

func TestWallPunctuatorAndClone(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	c := NewClock(clockTopology(t), nil, start)
	next, ok := c.NextWall()
	require.True(t, ok)
	require.Equal(t, start.Add(10*time.Second), next)
	require.Empty(t, c.dueWall(start.Add(9*time.Second)))

	work := c.Clone()
	require.Equal(t, []firing{{"wall", start.Add(12 * time.Second), -1}}, work.dueWall(start.Add(12*time.Second)))
	require.Empty(t, work.dueWall(start.Add(13*time.Second)), "next firing one interval after the last")
	// The committed clock did not move: an aborted transaction's firing
	// fires again.
	require.Len(t, c.dueWall(start.Add(12*time.Second)), 1)
}

// Each sub-topology keeps its own stream time, and a stream-time
// punctuator follows its own sub-topology's: records of the first part of
// a repartitioned topology must not fire (or close windows in) the second.
func TestClockStreamTimePerSubtopology(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	topology.Source(b, "sales", "sales", topology.String(), topology.String())
	topology.Repartition(b, "by-product", topology.String(), topology.String(), topology.Parents("sales"))
	topology.Store(b, "totals", topology.String(), topology.String())
	nop := func(*topology.Call, time.Time) error { return nil }
	topology.Node(b, "sum", func(*topology.Call, topology.Record[string, string]) error { return nil },
		topology.Parents("by-product"), topology.Stores("totals"))
	topology.Schedule(b, "minute", time.Minute, topology.StreamTime, nop, topology.Stores("totals"))
	topo, err := b.Build()
	require.NoError(t, err)
	require.Equal(t, 2, topo.Subtopologies())
	require.Equal(t, 0, topo.Subtopology("sales"))
	require.Equal(t, 1, topo.Subtopology(topology.RepartitionTopic("", "by-product")))
	require.Equal(t, 1, topo.StoreSubtopology("totals"))
	require.Equal(t, 1, topo.Punctuators()[0].Subtopology)

	c := NewClock(topo, []time.Time{{}, time.Unix(90, 0)}, time.Unix(0, 0))
	c.Streams[0] = time.Unix(600, 0) // the sales run ahead
	require.Empty(t, c.dueStream(), "the sales' stream time fires nothing in the per-product part")
	require.Equal(t, time.Unix(600, 0), c.Stream(), "the task's stream time is the largest")
	c.Streams[1] = time.Unix(130, 0)
	require.Equal(t, []firing{{"minute", time.Unix(120, 0), 1}}, c.dueStream())
}
