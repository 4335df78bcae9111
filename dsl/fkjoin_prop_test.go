package dsl_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// TestForeignKeyJoinProperty compares ForeignKeyJoin and
// ForeignKeyLeftJoin with a brute-force join on random scenarios: one to
// three partitions, a few left keys and foreign keys, left upserts (often
// changing the foreign key, sometimes to none, values from a small set so
// that a key may come back to a value it had), left deletions, right
// upserts and deletions, in a random interleaving. A left event is a batch
// of one to three updates of one key, flat-mapped and grouped through a
// repartition topic, so that later updates of a key overtake the
// responses to earlier ones (see TestForeignKeyJoinStaleResponse).
//
// Checked:
//   - after all events, folding each join's output (a deletion removes the
//     key) gives the brute-force join of the final tables;
//   - no stale result: each time a joiner runs, the left value it gets is
//     the key's current one, and so is the right value (the right table
//     changes only by piped records, and the driver drains the internal
//     topics after each, so here a response never outlives its right
//     value; on a cluster only the left half holds);
//   - the subscription stores hold exactly one subscription per left key
//     with a foreign key, to that key.
func TestForeignKeyJoinProperty(t *testing.T) {
	t.Parallel()
	seed := joinSeed(t)
	rng := rand.New(rand.NewPCG(seed, 13))
	fk := func(_ string, v *string) *string { return orderCustomer("", *v) }
	for i := range 200 {
		parts := 1 + rng.Int32N(3)
		nkeys, nfks := 1+rng.IntN(5), 1+rng.IntN(4)
		evs := randFKEvents(rng, nkeys, nfks)
		name := fmt.Sprintf("seed %d case %d partitions=%d events=%v", seed, i, parts, evs)

		// The tables as the topology holds them at each moment, kept by
		// Peek on their changes (which run before the join sees them).
		curL, curR := map[string]string{}, map[string]string{}
		var stale []string
		check := func(join, k, v, vo string, found bool) {
			if cv, ok := curL[k]; !ok || cv != v {
				stale = append(stale, fmt.Sprintf("%s: %s joined with left %q, current %q (held %v)", join, k, v, cv, ok))
			}
			var cr string
			var ok bool
			if f := orderCustomer("", v); f != nil {
				cr, ok = curR[*f]
			}
			if ok != found || cr != vo {
				stale = append(stale, fmt.Sprintf("%s: %s (%q) joined with right %q found %v, current %q held %v", join, k, v, vo, found, cr, ok))
			}
		}

		d := dsl.New(nil)
		batches := dsl.StreamFrom(d, "l", "l", str, str)
		updates := dsl.FlatMap(batches, func(k, v string) []dsl.KeyValue[string, string] {
			var out []dsl.KeyValue[string, string]
			for u := range strings.SplitSeq(v, ";") {
				out = append(out, dsl.KeyValue[string, string]{Key: k, Value: u})
			}
			return out
		})
		left := dsl.Aggregate(updates.GroupByKey(str, str, dsl.Named("lg")), func() *string { return nil },
			func(_, v string, _ *string) *string {
				if v == "del" {
					return nil
				}
				return &v
			}, topology.JSON[*string](), dsl.Named("left-table"))
		right := dsl.TableFrom(d, "r", "r", pstr, str)
		left.ToStream().Peek(func(k string, v *string) {
			if v == nil {
				delete(curL, k)
			} else {
				curL[k] = *v
			}
		})
		right.ToStream().Peek(func(k *string, v string) {
			if v == "" {
				delete(curR, *k)
			} else {
				curR[*k] = v
			}
		})
		dsl.ForeignKeyJoin(left, right, fk, func(k string, v *string, vo string) string {
			check("inner", k, *v, vo, true)
			return k + ":" + *v + "@" + vo
		}, dsl.Named("inner")).ToStream().To("inner", str, str)
		dsl.ForeignKeyLeftJoin(left, right, fk, func(k string, v *string, vo string, found bool) string {
			check("left", k, *v, vo, found)
			if !found {
				vo = "?" + vo
			}
			return k + ":" + *v + "@" + vo
		}, dsl.Named("left")).ToStream().To("left", str, str)
		top, err := d.Build()
		require.NoError(t, err)
		drv := topologytest.New(t, top, topologytest.Options{Partitions: parts})
		pipeJoinEvents(drv, evs)
		require.Empty(t, stale, name)

		// The reference: replay the events into two maps.
		L, R := map[string]string{}, map[string]string{}
		for _, e := range evs {
			switch {
			case e.topic == "r" && e.del:
				delete(R, e.key)
			case e.topic == "r":
				R[e.key] = e.value
			default:
				for u := range strings.SplitSeq(e.value, ";") {
					if u == "del" {
						delete(L, e.key)
					} else {
						L[e.key] = u
					}
				}
			}
		}
		require.Equal(t, L, curL, "left table: %s", name)
		require.Equal(t, R, curR, "right table: %s", name)
		wantInner, wantLeft := map[string]string{}, map[string]string{}
		wantSubs := map[string]string{}
		for k, v := range L {
			f := orderCustomer("", v)
			if f == nil {
				wantLeft[k] = k + ":" + v + "@?"
				continue
			}
			wantSubs[*f+"|"+k] = ""
			if vo, ok := R[*f]; ok {
				wantInner[k] = k + ":" + v + "@" + vo
				wantLeft[k] = k + ":" + v + "@" + vo
			} else {
				wantLeft[k] = k + ":" + v + "@?"
			}
		}
		for _, j := range []struct {
			topic string
			want  map[string]string
		}{{"inner", wantInner}, {"left", wantLeft}} {
			folded := map[string]string{}
			for _, r := range readJoinRecs(drv, j.topic) {
				if r.Del {
					delete(folded, r.Key)
				} else {
					folded[r.Key] = r.Value
				}
			}
			require.Equal(t, j.want, folded, "%s: %s", j.topic, name)
			subs := map[string]string{}
			ref := topology.Store(topology.NewBuilder(), j.topic+"-subscriptions", topology.Bytes(), topology.Bytes())
			for k := range topologytest.All(drv, ref) {
				n := int(k[0])<<24 | int(k[1])<<16 | int(k[2])<<8 | int(k[3])
				subs[k[4:4+n]+"|"+k[4+n:]] = ""
			}
			require.Equal(t, wantSubs, subs, "%s subscriptions: %s", j.topic, name)
		}
	}
}

// randFKEvents returns 5 to 44 events: to "l" a batch of one to three
// updates of a key k0..k<nkeys-1> ("c<j>/p<n>", "/p<n>" with no foreign
// key, or "del"), to "r" an upsert or (one in three) a tombstone of
// c0..c<nfks-1>.
func randFKEvents(rng *rand.Rand, nkeys, nfks int) []joinEvent {
	n := 5 + rng.IntN(40)
	var evs []joinEvent
	for i := range n {
		e := joinEvent{ts: joinT0 + int64(i)}
		if rng.IntN(2) == 0 {
			e.topic, e.key = "l", "k"+strconv.Itoa(rng.IntN(nkeys))
			var us []string
			for range 1 + rng.IntN(3) {
				switch x := rng.IntN(8); {
				case x == 0:
					us = append(us, "del")
				case x == 1:
					us = append(us, "/p"+strconv.Itoa(rng.IntN(3)))
				default:
					us = append(us, "c"+strconv.Itoa(rng.IntN(nfks))+"/p"+strconv.Itoa(rng.IntN(3)))
				}
			}
			e.value = strings.Join(us, ";")
		} else {
			e.topic, e.key = "r", "c"+strconv.Itoa(rng.IntN(nfks))
			e.value = "r" + strconv.Itoa(i)
			e.del = rng.IntN(3) == 0
		}
		evs = append(evs, e)
	}
	return evs
}
