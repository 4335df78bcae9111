package topologytest_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// exampleTB stands in for the *testing.T a test passes to New: it panics
// on failure and runs cleanups on demand.
type exampleTB struct{ cleanups []func() }

func (*exampleTB) Helper()                           {}
func (*exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleTB) Cleanup(f func())                { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) close() {
	for _, f := range e.cleanups {
		f()
	}
}

// A word count re-keyed by word through a repartition topic: words of lines
// on different partitions meet in one task.
func Example_wordCount() {
	b := topology.NewBuilder()
	lines := topology.Source(b, "lines", "lines", topology.String(), topology.String())
	words := topology.Repartition(b, "words", topology.String(), topology.String(), topology.Parents("split"))
	topology.Node(b, "split", func(ctx *topology.Call, r topology.Record[string, string]) error {
		for _, w := range strings.Fields(r.Value) {
			if err := words.Send(ctx, w, w); err != nil {
				return err
			}
		}
		return nil
	}, topology.Parents(lines.Name()))
	counts := topology.Store(b, "counts", topology.String(), topology.Int64())
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		n, _, err := counts.Get(ctx, r.Key)
		if err != nil {
			return err
		}
		return counts.Put(ctx, r.Key, n+1)
	}, topology.Parents(words.Name()), topology.Stores(counts.Name()))
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	t := &exampleTB{} // in a test: the *testing.T
	defer t.close()
	d := topologytest.New(t, topo, topologytest.Options{Application: "wc", Partitions: 4})
	in := topologytest.Input(d, "lines", topology.String(), topology.String())
	in.Pipe("doc1", "to be or not to be")
	in.Pipe("doc2", "be quick")
	n, _ := topologytest.Get(d, counts, "be")
	fmt.Println("be:", n)
	fmt.Println("repartition records:", len(d.Produced("wc-words-repartition")))
	// Output:
	// be: 3
	// repartition records: 8
}

// A wall-clock punctuator fires on every partition, one that never
// received a record included, when the driver's clock passes its interval.
func ExampleDriver_AdvanceWallClock() {
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	topology.Sink(b, "copy", "copy", topology.String(), topology.String(), topology.Parents("in"))
	beats := topology.Sink(b, "beats", "beats", topology.String(), topology.String(), topology.Parents("beat"))
	topology.Schedule(b, "beat", time.Minute, topology.WallClock, func(ctx *topology.Call, at time.Time) error {
		return beats.Send(ctx, fmt.Sprint("partition ", ctx.Partition()), at.Format(time.TimeOnly))
	})
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	t := &exampleTB{}
	defer t.close()
	d := topologytest.New(t, topo, topologytest.Options{Partitions: 2})
	d.AdvanceWallClock(90 * time.Second)
	for _, r := range topologytest.Output(d, "beats", topology.String(), topology.String()).ReadAll() {
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// partition 0 00:01:30
	// partition 1 00:01:30
}

// A bad record goes to the dead-letter topic with headers saying where it
// came from and why, and leaves no other trace.
func ExampleDriver_DeadLetters() {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.Int64())
	topology.Sink(b, "out", "out", topology.String(), topology.Int64(), topology.Parents(src.Name()))
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	t := &exampleTB{}
	defer t.close()
	d := topologytest.New(t, topo, topologytest.Options{})
	d.PipeRaw("in", topologytest.Record{Key: []byte("k"), Value: []byte("not eight bytes")})
	for _, r := range d.DeadLetters() {
		fmt.Println(r.Topic, string(r.Value))
		for _, h := range r.Headers[1:] {
			fmt.Println(" ", h.Key, string(h.Value))
		}
	}
	fmt.Println("outputs:", len(d.Produced("out")))
	// Output:
	// test-dlq not eight bytes
	//   exactly.source.topic in
	//   exactly.source.partition 0
	//   exactly.source.offset 0
	// outputs: 0
}
