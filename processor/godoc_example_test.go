package processor_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// visits counts visits per page in store "visits" and writes each new
// count to topic "page-counts".
func visits() *topology.Topology {
	b := topology.NewBuilder()
	src := topology.Source(b, "visits", "visits", topology.String(), topology.String())
	counts := topology.Store(b, "visits", topology.String(), topology.Int64())
	out := topology.Sink(b, "counts", "page-counts", topology.String(), topology.Int64(), topology.Parents("count"))
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		n, _, err := counts.Get(ctx, r.Key)
		if err != nil {
			return err
		}
		if err := counts.Put(ctx, r.Key, n+1); err != nil {
			return err
		}
		return out.Send(ctx, r.Key, n+1)
	}, topology.Parents(src.Name()), topology.Stores(counts.Name()))
	t, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}
	return t
}

// Example runs a topology exactly once on an in-process cluster: New
// checks the configuration, Run joins the group, creates the changelog and
// output topics, and processes in transactions until its context ends.
// Query reads the committed state of a key; with the input offset of a
// record it produced, a caller waits until the state reflects it.
func Example() {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "visits"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	dir, err := os.MkdirTemp("", "processor-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	p, err := processor.New(visits(),
		processor.Brokers(c.ListenAddrs()...),
		processor.Group("pages"),        // consumer group and application id
		processor.InstanceID("pages-1"), // stable: the transactional id is pages-pages-1
		processor.StateDir(dir),         // local Pebble state
		processor.CommitInterval(50*time.Millisecond),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	var last int64
	for _, page := range []string{"/home", "/about", "/home"} {
		r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: "visits", Key: []byte(page), Value: []byte("v")}).First()
		if err != nil {
			log.Fatal(err)
		}
		if page == "/home" {
			last = r.Offset
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, err := p.Query(ctx, "visits", []byte("/home"))
		if err == nil && l.Offset >= last {
			n, _ := topology.Int64().Decode(l.Value)
			fmt.Println("/home visited", n, "times")
			break
		}
		if time.Now().After(deadline) { // before the first assignment, Query says not started or not owner
			log.Fatalf("query: %v", err)
		}
	}
	cancel() // ends the open transaction and leaves the group
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Stats().Records, "records processed")

	// The stopped instance's state directory can be inspected.
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	parts, err := db.Partitions("visits")
	if err != nil {
		log.Fatal(err)
	}
	keys := 0
	for _, part := range parts {
		it, err := db.NewIter("visits", part)
		if err != nil {
			log.Fatal(err)
		}
		for it.Next() {
			keys++
		}
		if err := it.Close(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(keys, "pages in the local state")
	// Output:
	// /home visited 2 times
	// 3 records processed
	// 2 pages in the local state
}
