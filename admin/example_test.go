package admin_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/topology"
)

// wordCount is a tiny topology: it counts words of lines from two
// co-partitioned topics in one store and writes the counts.
func wordCount() *topology.Topology {
	b := topology.NewBuilder()
	books := topology.Source(b, "books", "books", topology.String(), topology.String())
	talks := topology.Source(b, "talks", "talks", topology.String(), topology.String())
	counts := topology.Store(b, "counts", topology.String(), topology.Int64())
	out := topology.Sink(b, "out", "word-counts", topology.String(), topology.Int64(), topology.Parents("count"))
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		n, _, err := counts.Get(ctx, r.Key)
		if err != nil {
			return err
		}
		n += int64(len(strings.Fields(r.Value)))
		if err := counts.Put(ctx, r.Key, n); err != nil {
			return err
		}
		return out.Send(ctx, r.Key, n)
	}, topology.Parents(books.Name(), talks.Name()), topology.Stores(counts.Name()))
	top, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}
	return top
}

// newCluster starts an in-process one-broker Kafka cluster (kfake) and a
// plain client on it.
func newCluster(opts ...kfake.Opt) (*kfake.Cluster, *kgo.Client) {
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		log.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		log.Fatal(err)
	}
	return c, cl
}

func ExampleStageOf() {
	stage := admin.StageOf(wordCount(), "wc", "wc-dlq")
	fmt.Println("group:", stage.Group)
	fmt.Println("inputs:", stage.Inputs)
	fmt.Println("outputs:", stage.Outputs)
	fmt.Println("changelogs:", stage.Changelogs)
	// Output:
	// group: wc
	// inputs: [books talks]
	// outputs: [word-counts wc-dlq]
	// changelogs: [wc-counts-changelog]
}

func ExampleCreateTopics() {
	c, cl := newCluster()
	defer c.Close()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	p := admin.Pipeline{Stages: []admin.Stage{admin.StageOf(wordCount(), "wc", "wc-dlq")}}
	r, err := admin.CreateTopics(ctx, cl, p, admin.TopicsConfig{Partitions: 3, ReplicationFactor: -1})
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range r.Topics {
		fmt.Printf("%-20s %-9s partitions=%d cleanup.policy=%s\n", t.Topic, t.Role, t.Partitions, t.CleanupPolicy)
	}
	fmt.Println("ok:", r.OK())
	// Output:
	// books                input     partitions=3 cleanup.policy=delete
	// talks                input     partitions=3 cleanup.policy=delete
	// word-counts          output    partitions=3 cleanup.policy=delete
	// wc-dlq               output    partitions=3 cleanup.policy=delete
	// wc-counts-changelog  changelog partitions=3 cleanup.policy=compact
	// ok: true
}

func ExampleCheckTopics() {
	// The inputs exist, but not co-partitioned; nothing else does.
	c, cl := newCluster(kfake.SeedTopics(3, "books"), kfake.SeedTopics(2, "talks"))
	defer c.Close()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	p := admin.Pipeline{Stages: []admin.Stage{admin.StageOf(wordCount(), "wc", "wc-dlq")}}
	r, err := admin.CheckTopics(ctx, cl, p, admin.TopicsConfig{Partitions: 3, ReplicationFactor: -1})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range r.Mismatches {
		fmt.Println(m)
	}
	// Output:
	// talks: has 2 partitions but books, read by the same stage, has 3: a stage's inputs must be co-partitioned
	// word-counts: missing (want 3 partitions)
	// wc-dlq: missing (want 3 partitions)
	// wc-counts-changelog: missing (want 3 partitions)
}

func ExampleDoctor() {
	c, cl := newCluster()
	defer c.Close()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	p := admin.Pipeline{Stages: []admin.Stage{admin.StageOf(wordCount(), "wc", "wc-dlq")}}
	if _, err := admin.CreateTopics(ctx, cl, p, admin.TopicsConfig{Partitions: 3, ReplicationFactor: -1}); err != nil {
		log.Fatal(err)
	}
	// Two lines wait in books, and the application never ran.
	for _, line := range []string{"to be or not to be", "that is the question"} {
		r := &kgo.Record{Topic: "books", Key: []byte("hamlet"), Value: []byte(line)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			log.Fatal(err)
		}
	}

	r, err := admin.Doctor(ctx, cl, p, admin.DoctorOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("severity:", r.Severity)
	for _, f := range r.Findings {
		fmt.Println(f)
	}
	g := r.Groups[0]
	fmt.Printf("group %s: %s, inputs %v, %d records waiting\n", g.Name, g.State, g.Inputs, g.TotalLag)
	// Output:
	// severity: warning
	// warning groups wc: group does not exist and has no committed offsets: the stage never ran, or its offsets expired (offsets.retention.minutes); 2 records wait in books
	// group wc: Dead, inputs [books talks], 2 records waiting
}
