package dsl_test

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// sessionCase is one random run of the session property test. Times are
// milliseconds after sessT0.
type sessionCase struct {
	gap, grace, after, retention int64 // after 0: no CloseOnWallClock
	final, drop                  bool
	steps                        []sessionStep
}

// sessionStep is a record (key, ts, value) or, when wall > 0, a
// wall-clock advance by wall ms.
type sessionStep struct {
	key   string
	ts    int64
	value int64
	wall  int64
}

func (c sessionCase) String() string {
	return fmt.Sprintf("gap %dms grace %dms wall-close %dms retention %dms final %v drop %v, %d steps",
		c.gap, c.grace, c.after, c.retention, c.final, c.drop, len(c.steps))
}

// interval is a wall-clock step long enough for the closing punctuator
// (every after/2, at most 1s) to fire at every step.
func (c sessionCase) interval() int64 { return max(min((c.after+1)/2, 1000), 1) }

func randomSessionCase(rng *rand.Rand) sessionCase {
	c := sessionCase{
		gap:   1 + rng.Int64N(30),
		grace: rng.Int64N(40),
		final: rng.IntN(2) == 0,
		drop:  rng.IntN(2) == 0,
	}
	if c.final || rng.IntN(2) == 0 {
		c.after = 2 + rng.Int64N(60)
	}
	if rng.IntN(2) == 0 {
		c.retention = rng.Int64N(100)
	}
	keys := 1 + rng.IntN(5)
	base := int64(0)
	for range 20 + rng.IntN(60) {
		if c.after > 0 && rng.IntN(15) == 0 {
			c.steps = append(c.steps, sessionStep{wall: c.interval() * (1 + rng.Int64N(3))})
			continue
		}
		base += rng.Int64N(8)
		ts := base
		if rng.IntN(3) == 0 { // out of order, often late
			ts = max(base-rng.Int64N(80), 0)
		}
		c.steps = append(c.steps, sessionStep{key: "k" + strconv.Itoa(rng.IntN(keys)), ts: ts, value: rng.Int64N(100)})
	}
	return c
}

// refSession is a session of the reference: its key, window (ms,
// inclusive) and folds.
type refSession struct {
	key        string
	start, end int64
	count, sum int64
	partition  int32
}

func (r refSession) windowed() topology.Windowed[string] {
	return topology.Windowed[string]{Key: r.key, Window: topology.Window{
		Start: sessT0.Add(time.Duration(r.start) * time.Millisecond), End: sessT0.Add(time.Duration(r.end) * time.Millisecond)}}
}

// result is the form the test compares: "key[start,end]=count/sum".
func (r refSession) result() string {
	return sessionString(r.windowed(), fmt.Sprintf("%d/%d", r.count, r.sum))
}

// sessionReference is the brute-force model, written from the rules in
// SessionGroup's doc and independent of the operator's code: per
// partition it tracks stream time and the wall-clock mark to tell late
// records; the accepted records of each key, sorted by time and cut where
// neighbours are more than the gap apart, are the sessions.
type sessionReference struct {
	c        sessionCase
	part     func(key string) int32
	stream   map[int32]int64 // absent: no record yet
	mark     map[int32]int64
	accepted map[string][]sessionStep
	late     []sessionStep
}

const sessNoTime = -1 << 62

func (m *sessionReference) get(t map[int32]int64, p int32) int64 {
	if v, ok := t[p]; ok {
		return v
	}
	return sessNoTime
}

// closed returns the partition's closing watermark at stream time s:
// sessions ending at or before it are closed.
func (m *sessionReference) closed(p int32, s int64) int64 {
	w := m.get(m.mark, p)
	if s != sessNoTime {
		w = max(w, s-m.c.gap-m.c.grace-1)
	}
	return w
}

func (m *sessionReference) record(r sessionStep) {
	p := m.part(r.key)
	s := max(m.get(m.stream, p), r.ts)
	if r.ts <= m.closed(p, s)+m.c.gap {
		m.late = append(m.late, r)
		if m.c.drop { // a dropped record is processed: it moves stream time
			m.stream[p] = s
		}
		return
	}
	m.stream[p] = s
	m.accepted[r.key] = append(m.accepted[r.key], r)
}

func (m *sessionReference) wall(now int64, parts int32) {
	for p := range parts {
		by := now - m.c.after - m.c.gap - m.c.grace - 1
		if by > m.closed(p, m.get(m.stream, p)) {
			m.mark[p] = by
		}
	}
}

// sessions returns every session.
func (m *sessionReference) sessions() []refSession {
	var out []refSession
	for k, rs := range m.accepted {
		rs = slices.SortedFunc(slices.Values(rs), func(a, b sessionStep) int { return int(a.ts - b.ts) })
		cur := refSession{key: k, start: rs[0].ts, partition: m.part(k)}
		for i, r := range rs {
			if i > 0 && r.ts-rs[i-1].ts > m.c.gap {
				cur.end = rs[i-1].ts
				out = append(out, cur)
				cur = refSession{key: k, start: r.ts, partition: m.part(k)}
			}
			cur.count++
			cur.sum += r.value
		}
		cur.end = rs[len(rs)-1].ts
		out = append(out, cur)
	}
	return out
}

// split returns the sessions closed at the end of the run (in their
// partition, stream time passed end + gap + grace or the wall clock
// closed them) and those still open or, for updates, retained.
func (m *sessionReference) split(all []refSession) (closed, kept []string) {
	extra := int64(0)
	if !m.c.final {
		extra = max(m.c.retention-m.c.grace, 0)
	}
	for _, s := range all {
		if s.end <= m.closed(s.partition, m.get(m.stream, s.partition))-extra {
			closed = append(closed, s.result())
		} else {
			kept = append(kept, s.result())
		}
	}
	slices.Sort(closed)
	slices.Sort(kept)
	return closed, kept
}

// TestSessionProperty runs random session cases (random keys, gaps, grace,
// retention, wall-clock closing, both emit strategies and late policies;
// timestamps in order, out of order within grace and late) through the
// test driver, a Count and a sum SessionAggregate on two partitions, and
// compares with the reference: with EmitFinal, the finals (each session
// exactly once, with its count and sum) after a wall clock closed all;
// with updates, the table's changes folded (updates put, deletions
// delete) and the store; and the dead-lettered records.
func TestSessionProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(19, 2))
	for i := range 250 {
		c := randomSessionCase(rng)
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			runSessionCase(t, c)
		})
	}
}

func runSessionCase(t *testing.T, c sessionCase) {
	const parts = 2
	d := dsl.New(nil)
	g := dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str)
	opts := []dsl.WindowOpt{dsl.Grace(time.Duration(c.grace) * time.Millisecond)}
	if c.final {
		opts = append(opts, dsl.EmitFinal())
	}
	if c.drop {
		opts = append(opts, dsl.Late(dsl.LateDrop))
	}
	if c.after > 0 {
		opts = append(opts, dsl.CloseOnWallClock(time.Duration(c.after)*time.Millisecond))
	}
	if c.retention > 0 {
		opts = append(opts, dsl.Retention(time.Duration(c.retention)*time.Millisecond))
	}
	sg := dsl.SessionWindowedBy(g, dsl.Session(time.Duration(c.gap)*time.Millisecond), opts...)
	counts := sg.Count()
	counts.ToStream().To("counts", topology.WindowedSerde(str), topology.Int64())
	dsl.SessionAggregate(sg, func() int64 { return 0 }, func(_ string, v string, agg int64) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		require.NoError(t, err)
		return agg + n
	}, func(_ string, a, b int64) int64 { return a + b }, topology.Int64()).
		ToStream().To("sums", topology.WindowedSerde(str), topology.Int64())
	top, err := d.Build()
	require.NoError(t, err)
	dr := topologytest.New(t, top, topologytest.Options{Partitions: parts})
	in := topologytest.Input(dr, "in", str, str)
	ref := &sessionReference{
		c: c, part: func(k string) int32 { return dr.Partition([]byte(k)) },
		stream: map[int32]int64{}, mark: map[int32]int64{}, accepted: map[string][]sessionStep{},
	}
	now := int64(0)
	for _, s := range c.steps {
		if s.wall > 0 {
			now += s.wall
			dr.AdvanceWallClock(time.Duration(s.wall) * time.Millisecond)
			ref.wall(now, parts)
			continue
		}
		in.PipeRecord(topology.Record[string, string]{Key: s.key, Value: strconv.FormatInt(s.value, 10), Timestamp: sessT0.Add(time.Duration(s.ts) * time.Millisecond)})
		ref.record(s)
	}
	all := ref.sessions()
	closed, kept := ref.split(all)
	var want []string
	for _, s := range all {
		want = append(want, s.result())
	}
	slices.Sort(want)
	// The store holds the sessions not yet closed (EmitFinal) or not yet
	// past retention (updates).
	stored := storedSessions(t, dr, counts.Name(), func(b []byte) string { return fmt.Sprint(int64(binary.BigEndian.Uint64(b))) })
	require.Equal(t, sessionCounts(kept), stored, "store: %v", c)
	counted := topologytest.Output(dr, "counts", topology.WindowedSerde(str), topology.Int64())
	summed := topologytest.Output(dr, "sums", topology.WindowedSerde(str), topology.Int64())
	if c.final {
		// Every closed session was emitted, once, when it closed; a wall
		// clock far ahead then closes the rest, each once.
		require.Equal(t, closed, sessionResults(t, counted.ReadAll(), summed.ReadAll()), "finals as the run went: %v", c)
		dr.AdvanceWallClock(24 * time.Hour)
		require.Equal(t, kept, sessionResults(t, counted.ReadAll(), summed.ReadAll()), "finals at the end: %v", c)
		require.Empty(t, storedSessions(t, dr, counts.Name(), func([]byte) string { return "" }), "finals leave the store")
	} else {
		// Updates: fold the changes; a deletion (count 0) removes.
		cs, ss := counted.ReadAll(), summed.ReadAll()
		require.Len(t, ss, len(cs))
		got := make(map[string]string)
		for i, o := range cs {
			require.Equal(t, o.Key, ss[i].Key)
			k := sessionString(o.Key, "")
			if o.Value == 0 {
				delete(got, k)
				continue
			}
			got[k] = sessionString(o.Key, fmt.Sprintf("%d/%d", o.Value, ss[i].Value))
		}
		require.Equal(t, want, slices.Sorted(maps.Values(got)), "folded updates: %v", c)
	}
	var dl []string
	for _, r := range dr.DeadLetters() {
		dl = append(dl, fmt.Sprintf("%s@%d", r.Key, r.Timestamp.Sub(sessT0).Milliseconds()))
	}
	var wantDL []string
	if !c.drop {
		for _, r := range ref.late {
			wantDL = append(wantDL, fmt.Sprintf("%s@%d", r.key, r.ts))
		}
	}
	require.Equal(t, wantDL, dl, "late records: %v", c)
}

// sessionResults pairs the finals of the two aggregations as sorted
// "key[start,end]=count/sum".
func sessionResults(t *testing.T, counts, sums []topology.Record[topology.Windowed[string], int64]) []string {
	t.Helper()
	require.Len(t, sums, len(counts))
	var out []string
	for i, o := range counts {
		require.Equal(t, o.Key, sums[i].Key)
		out = append(out, sessionString(o.Key, fmt.Sprintf("%d/%d", o.Value, sums[i].Value)))
	}
	slices.Sort(out)
	return out
}

// sessionCounts drops the "/sum" of results: the store compared is Count's.
func sessionCounts(rs []string) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r[:strings.LastIndexByte(r, '/')])
	}
	return out
}
