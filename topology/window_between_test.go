package topology_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

// EndedBetween returns the windows whose end is in (after, upTo], in end
// order: the lower bound is exclusive, the upper inclusive, and an empty
// or inverted range reads nothing.
func TestWindowStoreEndedBetween(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	ws := topology.WindowStore(b, "w", topology.String(), topology.Int64())
	var run func(c *topology.Call) error
	topology.Node(b, "n", func(c *topology.Call, _ topology.Record[string, string]) error { return run(c) },
		topology.Parents("in"), topology.Stores("w"))
	top := mustBuild(t, b)
	rt := newFakeRuntime()
	do := func(fn func(c *topology.Call) error) {
		t.Helper()
		run = fn
		require.NoError(t, top.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: []byte("v")}))
	}
	do(func(c *topology.Call) error {
		for i, w := range []topology.Window{win(-60, 0), win(0, 60), win(60, 120), win(120, 180)} {
			if err := ws.Put(c, "a", w, int64(i)); err != nil {
				return err
			}
		}
		return nil
	})
	after := func(from, to int64) (got []int64) {
		do(func(c *topology.Call) error {
			return ws.EndedBetween(c, time.Unix(from, 0), time.Unix(to, 0), func(_ topology.Windowed[string], v int64) (bool, error) {
				got = append(got, v)
				return true, nil
			})
		})
		return got
	}
	require.Equal(t, []int64{1, 2}, after(0, 120), "(0, 120]")
	require.Equal(t, []int64{0, 1, 2, 3}, after(-61, 180))
	require.Empty(t, after(60, 60))
	require.Empty(t, after(120, 60))
	require.Equal(t, []int64{3}, after(179, 1<<40))
}
