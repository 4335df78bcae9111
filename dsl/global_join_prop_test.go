package dsl_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// TestGlobalJoinProperty runs random interleavings of global-topic
// updates and tombstones (on any partition) and stream records (on any of
// several partitions, values "<lookup key>|<id>") through JoinGlobal and
// LeftJoinGlobal, half the time after a SelectKey (a re-keyed stream),
// and compares the outputs, in order, with a reference: a map of the
// global topic replayed in pipe order, looked up for each stream record.
// Replay a failure with JOIN_SEED.
func TestGlobalJoinProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(joinSeed(t), 0))
	for scenario := range 150 {
		rekey := rng.IntN(2) == 0
		parts := int32(1 + rng.IntN(4))
		d := dsl.New(nil)
		s := dsl.StreamFrom(d, "s", "stream", str, str)
		if rekey {
			s = dsl.SelectKey(s, func(k, v string) string { return k + "/" + v[:2] })
		}
		g := dsl.GlobalTableFrom(d, "g", "global", str, str)
		lookup := func(_, v string) string { return v[:2] }
		dsl.JoinGlobal(s, g, lookup, func(k, v, vg string) string { return v + "=" + vg }).To("inner", str, str)
		dsl.LeftJoinGlobal(s, g, lookup, func(k, v, vg string, found bool) string {
			if !found {
				return v + "=?"
			}
			return v + "=" + vg
		}).To("left", str, str)
		top, err := d.Build()
		require.NoError(t, err)
		dr := topologytest.New(t, top, topologytest.Options{Partitions: parts})
		inner := topologytest.Output(dr, "inner", str, str)
		left := topologytest.Output(dr, "left", str, str)

		ref := make(map[string]string)
		var wantInner, wantLeft []globalJoinRec
		n := 5 + rng.IntN(40)
		var log []string
		for i := range n {
			key := fmt.Sprintf("g%d", rng.IntN(5))
			part := rng.Int32N(parts)
			ts := joinT0 + rng.Int64N(1000) - 500
			id := fmt.Sprintf("e%d", i)
			switch rng.IntN(3) {
			case 0: // global update or tombstone
				r := topologytest.Record{Partition: part, Key: []byte(key), Timestamp: time.UnixMilli(ts)}
				if rng.IntN(3) == 0 {
					delete(ref, key)
					log = append(log, "del "+key)
				} else {
					r.Value = []byte("v" + id)
					ref[key] = "v" + id
					log = append(log, "put "+key+"="+"v"+id)
				}
				dr.PipeRaw("global", r)
			default: // stream record
				k := fmt.Sprintf("s%d", rng.IntN(6))
				v := key + "|" + id
				log = append(log, fmt.Sprintf("stream %s=%s p%d", k, v, part))
				dr.PipeRaw("stream", topologytest.Record{Partition: part, Key: []byte(k), Value: []byte(v),
					Timestamp: time.UnixMilli(ts), Headers: []topology.Header{{Key: "id", Value: []byte(id)}}})
				if rekey {
					k += "/" + key
				}
				vg, ok := ref[key]
				if ok {
					wantInner = append(wantInner, globalJoinRec{k, v + "=" + vg, ts, id})
					wantLeft = append(wantLeft, globalJoinRec{k, v + "=" + vg, ts, id})
				} else {
					wantLeft = append(wantLeft, globalJoinRec{k, v + "=?", ts, id})
				}
			}
		}
		msg := fmt.Sprintf("scenario %d (rekey %v, %d partitions):\n%s", scenario, rekey, parts, strings.Join(log, "\n"))
		require.Equal(t, wantInner, readGlobalJoin(inner), "inner: %s", msg)
		require.Equal(t, wantLeft, readGlobalJoin(left), "left: %s", msg)
		require.Empty(t, dr.DeadLetters(), msg)
	}
}
