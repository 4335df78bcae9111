package dsl_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// joinSeed returns the seed of a join property test: $JOIN_SEED if set
// (to replay a failure), else a new one, logged.
func joinSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("JOIN_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = n
	}
	t.Logf("seed %d (replay with JOIN_SEED=%d)", seed, seed)
	return seed
}

// joinEvent is one piped record of a join scenario: to topic, key, value
// (del: a tombstone), timestamp.
type joinEvent struct {
	topic string
	key   string
	value string
	del   bool
	ts    int64 // Unix ms
}

// joinRec is an output record as the tests compare them; del marks a
// table-join deletion (ToStream forwards it as the zero value, "").
type joinRec struct {
	Key, Value string
	Del        bool
	TS         int64
	Header     string // the "id" header: the id of the event that caused it
}

var joinT0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// randJoinEvents returns n events over topics, keys k0..k<nkeys-1> (the
// keys of topic stream, if any, also from a few more that no table
// holds), values unique by id, tombstones for tables (often of keys the
// table may not hold), timestamps wandering back and forth (the driver
// processes in pipe order regardless).
func randJoinEvents(rng *rand.Rand, stream string, tables []string, nkeys int) []joinEvent {
	n := 5 + rng.IntN(40)
	topics := append([]string{stream}, tables...)
	if stream == "" {
		topics = tables
	}
	var evs []joinEvent
	for i := range n {
		e := joinEvent{topic: topics[rng.IntN(len(topics))], ts: joinT0 + rng.Int64N(1000)}
		if e.topic == stream {
			e.key = "k" + strconv.Itoa(rng.IntN(nkeys+2))
			e.value = "s" + strconv.Itoa(i)
		} else {
			e.key = "k" + strconv.Itoa(rng.IntN(nkeys))
			e.value = e.topic + strconv.Itoa(i)
			e.del = rng.IntN(3) == 0
		}
		evs = append(evs, e)
	}
	return evs
}

// pipeJoinEvents pipes evs one at a time (each its own transaction), the
// event's index as header "id", tombstones as null values.
func pipeJoinEvents(drv *topologytest.Driver, evs []joinEvent) {
	for i, e := range evs {
		r := topology.Record[string, []byte]{Key: e.key, Value: []byte(e.value), Timestamp: time.UnixMilli(e.ts),
			Headers: []topology.Header{{Key: "id", Value: []byte(strconv.Itoa(i))}}}
		if e.del {
			r.Value = nil
		}
		topologytest.Input(drv, e.topic, str, topology.Bytes()).PipeRecord(r)
	}
}

func readJoinRecs(drv *topologytest.Driver, topic string) []joinRec {
	var out []joinRec
	for _, r := range topologytest.Output(drv, topic, str, str).ReadAll() {
		var id string
		for _, h := range r.Headers {
			if h.Key == "id" {
				id = string(h.Value)
			}
		}
		out = append(out, joinRec{Key: r.Key, Value: r.Value, Del: r.Value == "", TS: r.Timestamp.UnixMilli(), Header: id})
	}
	return out
}

// TestStreamTableJoinProperty compares Join and LeftJoin with a reference
// on random scenarios: one to three partitions, stream records for keys
// the table holds, held once, or never held, table updates, repeated
// updates and tombstones (of held and unheld keys), timestamps out of
// order, all piped in a random interleaving. The reference replays the
// events in pipe order into a map (the table as of each stream record)
// and joins each stream record with it; the output (keys, values,
// timestamps, headers, order) must be equal. Table events emit nothing.
func TestStreamTableJoinProperty(t *testing.T) {
	t.Parallel()
	seed := joinSeed(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range 200 {
		parts := 1 + rng.Int32N(3)
		evs := randJoinEvents(rng, "s", []string{"t"}, 1+rng.IntN(6))
		name := fmt.Sprintf("seed %d case %d partitions=%d events=%v", seed, i, parts, evs)

		d := dsl.New(nil)
		s := dsl.StreamFrom(d, "s", "s", str, str)
		tab := dsl.TableFrom(d, "t", "t", str, str)
		dsl.Join(s, tab, func(k, v, vt string) string { return k + ":" + v + "@" + vt }).To("inner", str, str)
		dsl.LeftJoin(s, tab, func(k, v, vt string, found bool) string {
			if !found {
				vt = "?" + vt // vt is "" then: found tells absence from a zero value
			}
			return k + ":" + v + "@" + vt
		}).To("left", str, str)
		top, err := d.Build()
		require.NoError(t, err)
		drv := topologytest.New(t, top, topologytest.Options{Partitions: parts})
		pipeJoinEvents(drv, evs)

		table := make(map[string]string)
		var inner, left []joinRec
		for id, e := range evs {
			if e.topic == "t" {
				if e.del {
					delete(table, e.key)
				} else {
					table[e.key] = e.value
				}
				continue
			}
			h := strconv.Itoa(id)
			if vt, ok := table[e.key]; ok {
				inner = append(inner, joinRec{Key: e.key, Value: e.key + ":" + e.value + "@" + vt, TS: e.ts, Header: h})
				left = append(left, joinRec{Key: e.key, Value: e.key + ":" + e.value + "@" + vt, TS: e.ts, Header: h})
			} else {
				left = append(left, joinRec{Key: e.key, Value: e.key + ":" + e.value + "@?", TS: e.ts, Header: h})
			}
		}
		require.Equal(t, inner, readJoinRecs(drv, "inner"), "inner: %s", name)
		require.Equal(t, left, readJoinRecs(drv, "left"), "left: %s", name)
	}
}

// TestTableTableJoinProperty compares TableJoin, TableLeftJoin and
// TableOuterJoin with a reference on random interleavings of updates and
// tombstones to two tables over one to three partitions. The reference
// replays the events into two maps; after an event for key k it emits k's
// result when the join has one (inner: both sides hold k; left: a does;
// outer: either does), else a deletion of k when a result existed before
// the event, or when the event is a tombstone of a key its side did not
// hold while the join would have a result had the side held it (the
// documented spurious deletion: the join keeps no record of its results),
// else nothing. Each output is timestamped and headed as its event.
// Apart from the reference, folding each output into a map must give the
// brute-force join of the final tables.
func TestTableTableJoinProperty(t *testing.T) {
	t.Parallel()
	seed := joinSeed(t)
	rng := rand.New(rand.NewPCG(seed, 11))
	type kind struct {
		topic string
		has   func(okA, okB bool) bool
	}
	kinds := []kind{
		{"inner", func(okA, okB bool) bool { return okA && okB }},
		{"left", func(okA, _ bool) bool { return okA }},
		{"outer", func(okA, okB bool) bool { return okA || okB }},
	}
	result := func(k, va string, okA bool, vb string, okB bool) string {
		if !okA {
			va = "-"
		}
		if !okB {
			vb = "-"
		}
		return k + ":" + va + "+" + vb
	}
	for i := range 200 {
		parts := 1 + rng.Int32N(3)
		evs := randJoinEvents(rng, "", []string{"a", "b"}, 1+rng.IntN(6))
		name := fmt.Sprintf("seed %d case %d partitions=%d events=%v", seed, i, parts, evs)

		d := dsl.New(nil)
		a := dsl.TableFrom(d, "a", "a", str, str)
		b := dsl.TableFrom(d, "b", "b", str, str)
		dsl.TableJoin(a, b, func(k, va, vb string) string { return result(k, va, true, vb, true) }).
			ToStream().To("inner", str, str)
		dsl.TableLeftJoin(a, b, func(k, va, vb string, okB bool) string { return result(k, va, true, vb, okB) }).
			ToStream().To("left", str, str)
		dsl.TableOuterJoin(a, b, result).ToStream().To("outer", str, str)
		top, err := d.Build()
		require.NoError(t, err)
		drv := topologytest.New(t, top, topologytest.Options{Partitions: parts})
		pipeJoinEvents(drv, evs)

		for _, kd := range kinds {
			tabs := map[string]map[string]string{"a": {}, "b": {}}
			var want []joinRec
			for id, e := range evs {
				side := tabs[e.topic]
				_, okA := tabs["a"][e.key]
				_, okB := tabs["b"][e.key]
				before := kd.has(okA, okB)
				_, heldBefore := side[e.key]
				if e.del {
					delete(side, e.key)
				} else {
					side[e.key] = e.value
				}
				va, okA := tabs["a"][e.key]
				vb, okB := tabs["b"][e.key]
				rec := joinRec{Key: e.key, TS: e.ts, Header: strconv.Itoa(id)}
				switch {
				case kd.has(okA, okB):
					rec.Value = result(e.key, va, okA, vb, okB)
				case before:
					rec.Del = true
				case e.del && !heldBefore && (e.topic == "a" && kd.has(true, okB) || e.topic == "b" && kd.has(okA, true)):
					rec.Del = true // spurious: a tombstone of a key the side did not hold
				default:
					continue
				}
				want = append(want, rec)
			}
			got := readJoinRecs(drv, kd.topic)
			require.Equal(t, want, got, "%s: %s", kd.topic, name)

			folded := make(map[string]string)
			for _, r := range got {
				if r.Del {
					delete(folded, r.Key)
				} else {
					folded[r.Key] = r.Value
				}
			}
			brute := make(map[string]string)
			for k := range 8 {
				key := "k" + strconv.Itoa(k)
				va, okA := tabs["a"][key]
				vb, okB := tabs["b"][key]
				if kd.has(okA, okB) {
					brute[key] = result(key, va, okA, vb, okB)
				}
			}
			require.Equal(t, brute, folded, "%s folded: %s", kd.topic, name)
		}
	}
}
