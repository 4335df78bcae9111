package exactlytest_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// exampleCluster starts an in-process cluster with topic "out" of two
// partitions and returns a client of it.
func exampleCluster() (*kfake.Cluster, *kgo.Client) {
	c, err := kfake.NewCluster(kfake.SeedTopics(2, "out"))
	if err != nil {
		panic(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		panic(err)
	}
	return c, cl
}

// produceTxn writes values to partition 0 of "out" in one transaction,
// committed or aborted.
func produceTxn(c *kfake.Cluster, commit bool, values ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("example"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		panic(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "out", Value: []byte(v)}).FirstErr(); err != nil {
			panic(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		panic(err)
	}
}

// ExampleReadCommitted reads a topic whose last offset is an abort marker:
// the reader sees the marker, so it knows the partition is read to its
// end, and returns only the committed records.
func ExampleReadCommitted() {
	c, cl := exampleCluster()
	defer c.Close()
	defer cl.Close()
	produceTxn(c, true, "a", "b")
	produceTxn(c, false, "aborted")

	recs, err := exactlytest.ReadCommitted(context.Background(), cl, "out", exactlytest.ReadOptions{})
	if err != nil {
		panic(err)
	}
	for p, rs := range recs {
		for _, r := range rs {
			fmt.Printf("partition %d offset %d: %s\n", p, r.Offset, r.Value)
		}
	}
	// Output:
	// partition 0 offset 0: a
	// partition 0 offset 1: b
}

// ExampleCheckNoHangingTransactions finds a transaction left open: its
// partition's last stable offset stays below the high watermark.
func ExampleCheckNoHangingTransactions() {
	c, cl := exampleCluster()
	defer c.Close()
	defer cl.Close()
	ctx := context.Background()
	open, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("open"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		panic(err)
	}
	defer open.Close()
	if err := open.BeginTransaction(); err != nil {
		panic(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Topic: "out", Partition: 1, Value: []byte("x")}).FirstErr(); err != nil {
		panic(err)
	}

	hanging, err := exactlytest.CheckNoHangingTransactions(ctx, kadm.NewClient(cl), 0, "out")
	if err != nil {
		panic(err)
	}
	fmt.Println(hanging)
	// Output:
	// [out[1]: last stable offset 0 below high watermark 1: a transaction is left open]
}
