package topology_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

// The windowed key encoding is a wire format: these bytes must not change.
func TestWindowedSerdeIsStable(t *testing.T) {
	t.Parallel()
	s := topology.WindowedSerde(topology.String())
	w := topology.Windowed[string]{Key: "ab", Window: topology.Window{Start: time.UnixMilli(1000).UTC(), End: time.UnixMilli(61000).UTC()}}
	b, err := s.Encode(w)
	require.NoError(t, err)
	require.Equal(t, "6162"+"00000000000003e8"+"000000000000ee48", hex.EncodeToString(b))
	got, err := s.Decode(b)
	require.NoError(t, err)
	require.Equal(t, w, got)

	before := topology.Windowed[string]{Key: "", Window: topology.Window{Start: time.UnixMilli(-5000).UTC(), End: time.UnixMilli(-1000).UTC()}}
	b, err = s.Encode(before)
	require.NoError(t, err)
	got, err = s.Decode(b)
	require.NoError(t, err)
	require.Equal(t, before, got, "times before 1970 and an empty key round-trip")

	_, err = s.Decode([]byte("short"))
	require.ErrorContains(t, err, "shorter than its 16-byte window")
	bad, err := hex.DecodeString("6b" + "00000000000003e8" + "0000000000000001")
	require.NoError(t, err)
	_, err = s.Decode(bad)
	require.ErrorContains(t, err, "ends (1 ms) before it starts (1000 ms)")
}

func win(startSec, endSec int64) topology.Window {
	return topology.Window{Start: time.Unix(startSec, 0).UTC(), End: time.Unix(endSec, 0).UTC()}
}

// Fetch returns one key's windows in start order within [from, to], never
// another key's (even one whose bytes extend it); Ended returns every
// window ended by a time in end order and may delete them as it goes.
func TestWindowStoreFetchAndEnded(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	ws := topology.WindowStore(b, "w", topology.String(), topology.Int64())
	type step func(c *topology.Call) error
	var run step
	topology.Node(b, "n", func(c *topology.Call, _ topology.Record[string, string]) error { return run(c) },
		topology.Parents("in"), topology.Stores("w"))
	top := mustBuild(t, b)
	require.True(t, top.IsWindowStore("w"))
	require.False(t, top.IsWindowStore("in"))
	require.Contains(t, top.Describe(), `window store "w" [topology.Windowed[string], int64]`)
	rt := newFakeRuntime()
	do := func(fn step) {
		t.Helper()
		run = fn
		require.NoError(t, top.Dispatch(context.Background(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: []byte("v")}))
	}
	do(func(c *topology.Call) error {
		for _, e := range []struct {
			key string
			w   topology.Window
			v   int64
		}{
			{"a", win(60, 120), 2}, {"a", win(0, 60), 1}, {"a", win(120, 180), 3}, {"a", win(-60, 0), -1},
			{"a\x00", win(0, 60), 10}, {"ab", win(30, 90), 20}, {"", win(0, 60), 30},
		} {
			if err := ws.Put(c, e.key, e.w, e.v); err != nil {
				return err
			}
		}
		return nil
	})
	fetch := func(key string, from, to int64) (got []int64) {
		do(func(c *topology.Call) error {
			return ws.Fetch(c, key, time.Unix(from, 0), time.Unix(to, 0), func(w topology.Window, v int64) (bool, error) {
				got = append(got, v)
				return true, nil
			})
		})
		return got
	}
	require.Equal(t, []int64{-1, 1, 2, 3}, fetch("a", -1000, 1000))
	require.Equal(t, []int64{1, 2}, fetch("a", 0, 60), "to is inclusive")
	require.Equal(t, []int64{10}, fetch("a\x00", -1000, 1000))
	require.Equal(t, []int64{30}, fetch("", -1000, 1000))
	require.Empty(t, fetch("b", -1000, 1000))

	type ended struct {
		key string
		w   topology.Window
	}
	var got []ended
	do(func(c *topology.Call) error {
		return ws.Ended(c, time.Unix(90, 0), func(w topology.Windowed[string], v int64) (bool, error) {
			got = append(got, ended{w.Key, w.Window})
			return true, ws.Delete(c, w.Key, w.Window)
		})
	})
	require.Equal(t, []ended{{"a", win(-60, 0)}, {"", win(0, 60)}, {"a", win(0, 60)}, {"a\x00", win(0, 60)}, {"ab", win(30, 90)}}, got,
		"end order, then key bytes; the end bound is inclusive")
	require.Equal(t, []int64{2, 3}, fetch("a", -1000, 1000), "the ended windows were deleted")
	got = nil
	do(func(c *topology.Call) error {
		return ws.Ended(c, time.Unix(1000, 0), func(w topology.Windowed[string], v int64) (bool, error) {
			got = append(got, ended{w.Key, w.Window})
			return false, nil
		})
	})
	require.Equal(t, []ended{{"a", win(60, 120)}}, got, "false stops")

	got = nil
	do(func(c *topology.Call) error {
		return ws.EndedBetween(c, time.Unix(120, 0), time.Unix(180, 0), func(w topology.Windowed[string], v int64) (bool, error) {
			got = append(got, ended{w.Key, w.Window})
			return true, nil
		})
	})
	require.Equal(t, []ended{{"a", win(120, 180)}}, got, "EndedBetween: after is exclusive, upTo inclusive")

	do(func(c *topology.Call) error {
		if _, ok, err := ws.Mark(c, "closed"); err != nil || ok {
			return fmt.Errorf("mark before any: %v %v", ok, err)
		}
		return ws.SetMark(c, "closed", time.Unix(90, 0))
	})
	do(func(c *topology.Call) error {
		m, ok, err := ws.Mark(c, "closed")
		if err != nil || !ok || !m.Equal(time.Unix(90, 0)) {
			return fmt.Errorf("mark: %v %v %v", m, ok, err)
		}
		return nil
	})
	require.Empty(t, fetch("m", -1000, 1000), "a mark is not a window")

	do(func(c *topology.Call) error { return ws.Put(c, "a", win(60, 120), 7) })
	require.Equal(t, []int64{7, 3}, fetch("a", -1000, 1000), "Put overwrites a window")
}
