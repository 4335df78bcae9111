package dsl_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// globalJoinRec is an output record as the global join tests compare them.
type globalJoinRec struct {
	Key, Value string
	TS         int64
	Header     string
}

func readGlobalJoin(out topologytest.OutputTopic[string, string]) []globalJoinRec {
	var got []globalJoinRec
	for _, r := range out.ReadAll() {
		h := ""
		for _, x := range r.Headers {
			if x.Key == "id" {
				h = string(x.Value)
			}
		}
		got = append(got, globalJoinRec{r.Key, r.Value, r.Timestamp.UnixMilli(), h})
	}
	return got
}

// TestJoinGlobal: orders (key: order id, value: "<customer>:<item>") look
// their customer up in a global table by a key taken from the value; an
// update and a tombstone of the global topic change what later orders
// see, and produce nothing themselves.
func TestJoinGlobal(t *testing.T) {
	t.Parallel()
	for _, left := range []bool{false, true} {
		d := dsl.New(nil)
		orders := dsl.StreamFrom(d, "orders", "orders", str, str)
		customers := dsl.GlobalTableFrom(d, "customers", "customer-profiles", str, str)
		customer := func(_, v string) string { return v[:2] }
		var joined *dsl.Stream[string, string]
		if left {
			joined = dsl.LeftJoinGlobal(orders, customers, customer, func(k, v, c string, found bool) string {
				if !found {
					return v + "@?"
				}
				return v + "@" + c
			})
		} else {
			joined = dsl.JoinGlobal(orders, customers, customer, func(k, v, c string) string { return v + "@" + c })
		}
		joined.To("out", str, str)
		top, err := d.Build()
		require.NoError(t, err)
		require.Equal(t, map[string]string{"customers": "customer-profiles"}, top.GlobalStores())
		require.Empty(t, top.StoreNames(), "the join owns no state")
		require.Contains(t, top.Describe(), map[bool]string{false: "orders-global-join", true: "orders-global-left-join"}[left])

		dr := topologytest.New(t, top, topologytest.Options{Partitions: 3})
		in := topologytest.Input(dr, "orders", str, str)
		g := topologytest.Input(dr, "customer-profiles", str, str)
		out := topologytest.Output(dr, "out", str, str)
		order := func(key, value string, ts int64) {
			in.PipeRecord(topology.Record[string, string]{Key: key, Value: value, Timestamp: time.UnixMilli(ts),
				Headers: []topology.Header{{Key: "id", Value: []byte(key)}}})
		}

		g.Pipe("c1", "Ann")
		g.Pipe("c2", "Bob")
		require.Zero(t, out.Len(), "a global table update triggers nothing")
		order("o1", "c1:tea", 10)
		order("o2", "c2:jam", 5)
		order("o3", "c3:pen", 7)
		g.Pipe("c1", "Ann2")
		dr.PipeRaw("customer-profiles", topologytest.Record{Key: []byte("c2")}) // a tombstone
		order("o4", "c1:cup", 11)
		order("o5", "c2:mug", 12)

		want := []globalJoinRec{{"o1", "c1:tea@Ann", 10, "o1"}, {"o2", "c2:jam@Bob", 5, "o2"}}
		if left {
			want = append(want, globalJoinRec{"o3", "c3:pen@?", 7, "o3"})
		}
		want = append(want, globalJoinRec{"o4", "c1:cup@Ann2", 11, "o4"})
		if left {
			want = append(want, globalJoinRec{"o5", "c2:mug@?", 12, "o5"})
		}
		require.Equal(t, want, readGlobalJoin(out), "left %v", left)
		require.Empty(t, dr.DeadLetters())
	}
}

// TestJoinGlobalRekeyed: a stream re-keyed by SelectKey joins a global
// table without Repartition (the table is whole in every task); the
// output keeps the new key. Its records stay in their old partitions, so
// a later Join with a (partitioned) table still needs Repartition.
func TestJoinGlobalRekeyed(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	lines := dsl.StreamFrom(d, "lines", "lines", str, str)
	byWord := dsl.SelectKey(lines, func(_, v string) string { return v })
	words := dsl.GlobalTableFrom(d, "dict", "dictionary", str, str)
	joined := dsl.JoinGlobal(byWord, words, func(k, _ string) string { return k },
		func(k, _, meaning string) string { return k + "=" + meaning })
	joined.To("out", str, str)
	top, err := d.Build()
	require.NoError(t, err)

	dr := topologytest.New(t, top, topologytest.Options{Partitions: 4})
	g := topologytest.Input(dr, "dictionary", str, str)
	in := topologytest.Input(dr, "lines", str, str)
	out := topologytest.Output(dr, "out", str, str)
	g.Pipe("cat", "feline")
	g.Pipe("dog", "canine")
	for i, w := range []string{"cat", "dog", "eel", "cat"} {
		in.PipeTo(int32(i), topology.Record[string, string]{Key: "line", Value: w, Timestamp: time.UnixMilli(int64(i))})
	}
	var got []string
	for _, r := range out.ReadAll() {
		got = append(got, r.Key+":"+r.Value)
	}
	require.Equal(t, []string{"cat:cat=feline", "dog:dog=canine", "cat:cat=feline"}, got)

	// Joined further with a partitioned table, the re-keyed output needs
	// Repartition, as the stream itself would.
	d = dsl.New(nil)
	lines = dsl.StreamFrom(d, "lines", "lines", str, str)
	byWord = dsl.SelectKey(lines, func(_, v string) string { return v })
	words = dsl.GlobalTableFrom(d, "dict", "dictionary", str, str)
	joined = dsl.JoinGlobal(byWord, words, func(k, _ string) string { return k },
		func(k, _, meaning string) string { return k + "=" + meaning })
	counts := dsl.TableFrom(d, "counts", "counts", str, str)
	dsl.Join(joined, counts, func(_, a, b string) string { return a + b }).To("out", str, str)
	be := joinBuildError(t, d)
	require.ErrorIs(t, be, dsl.ErrRekeyed)
}

// TestJoinGlobalNils: a nil stream value produces nothing; a nil looked-up
// key is not looked up (no output from JoinGlobal, found false for
// LeftJoinGlobal); a stored value decoding as nil (JSON null) counts as
// absent; a Kafka null in the global topic deletes.
func TestJoinGlobalNils(t *testing.T) {
	t.Parallel()
	type prof struct{ Name string }
	js := topology.JSON[*prof]()
	jv := topology.JSON[*string]()
	d := dsl.New(nil)
	orders := dsl.StreamFrom(d, "orders", "orders", str, jv)
	customers := dsl.GlobalTableFrom(d, "customers", "customers", jv, js)
	key := func(_ string, v *string) *string {
		if *v == "none" {
			return nil
		}
		return v
	}
	dsl.JoinGlobal(orders, customers, key, func(_ string, v *string, p *prof) string { return *v + "@" + p.Name }).
		To("inner", str, str)
	dsl.LeftJoinGlobal(orders, customers, key, func(_ string, v *string, p *prof, found bool) string {
		if v == nil {
			return "nil@?"
		}
		if !found {
			require.Nil(t, p)
			return *v + "@?"
		}
		return *v + "@" + p.Name
	}).To("left", str, str)
	top, err := d.Build()
	require.NoError(t, err)
	dr := topologytest.New(t, top, topologytest.Options{Partitions: 2})
	in := topologytest.Input(dr, "orders", str, jv)
	g := topologytest.Input(dr, "customers", jv, js)
	inner := topologytest.Output(dr, "inner", str, str)
	leftOut := topologytest.Output(dr, "left", str, str)
	sp := func(s string) *string { return &s }

	g.Pipe(sp("c1"), &prof{"Ann"})
	g.Pipe(sp("c2"), &prof{"Bob"})
	dr.PipeRaw("customers", topologytest.Record{Key: []byte(`"c3"`), Value: []byte("null")}) // decodes as nil
	in.Pipe("o1", sp("c1"))
	in.Pipe("o2", nil) // a nil value: nothing
	in.Pipe("o3", sp("c3"))
	g.Pipe(sp("c1"), nil) // JSON encodes a nil pointer as a Kafka null: a delete
	in.Pipe("o4", sp("c1"))
	in.Pipe("o5", sp("c2"))
	in.Pipe("o6", sp("none")) // a nil lookup key

	var gotInner, gotLeft []string
	for _, r := range inner.ReadAll() {
		gotInner = append(gotInner, r.Key+":"+r.Value)
	}
	for _, r := range leftOut.ReadAll() {
		gotLeft = append(gotLeft, r.Key+":"+r.Value)
	}
	require.Equal(t, []string{"o1:c1@Ann", "o5:c2@Bob"}, gotInner)
	require.Equal(t, []string{"o1:c1@Ann", "o3:c3@?", "o4:c1@?", "o5:c2@Bob", "o6:none@?"}, gotLeft)
	require.Empty(t, dr.DeadLetters())
}

// TestGlobalTableFromErrors: the global table's topic cannot also be a
// stream's; its name is taken like any operator's.
func TestGlobalTableFromErrors(t *testing.T) {
	t.Parallel()
	d := dsl.New(nil)
	dsl.StreamFrom(d, "p", "profiles", str, str).To("out", str, str)
	g := dsl.GlobalTableFrom(d, "g", "profiles", str, str)
	require.Equal(t, "g", g.Name())
	require.Equal(t, "g", g.Store().Name())
	_, err := d.Build()
	require.ErrorContains(t, err, `global store replicates topic "profiles", which source "p" reads`)

	d = dsl.New(nil)
	dsl.StreamFrom(d, "g", "in", str, str).To("out", str, str)
	dsl.GlobalTableFrom(d, "g", "profiles", str, str)
	_, err = d.Build()
	require.ErrorIs(t, err, dsl.ErrDuplicateName)
}
