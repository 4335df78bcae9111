package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/cluster"
)

// numPartitions is the test topic's partition count; every transaction
// writes one record to each partition.
const numPartitions = 3

// TestTransactionsSurviveNodeCrash runs against the cluster that
// integration/kafka/cluster.sh started: it commits a transaction, aborts
// one, crashes the leader of partition 0 with SIGKILL, commits another
// transaction while that node is down (3+ nodes only: a single node cluster
// has nobody to take over), restarts the node, commits once more, and checks
// that a read_committed consumer sees exactly the committed records, in
// order, on every partition. It skips only when KAFKA_BROKERS is unset.
func TestTransactionsSurviveNodeCrash(t *testing.T) {
	env := os.Getenv("KAFKA_BROKERS")
	if env == "" {
		t.Skip("KAFKA_BROKERS is not set; start a cluster with integration/kafka/cluster.sh up")
	}
	seeds := strings.Split(env, ",")

	c, err := cluster.FromEnv()
	require.NoError(t, err, "KAFKA_BROKERS is set, but there is no cluster.sh state to drive")
	require.ElementsMatch(t, c.Brokers(), seeds, "KAFKA_BROKERS must name the cluster in %s", c.Dir())

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	require.NoError(t, c.WaitReady(ctx))

	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	require.NoError(t, err)
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	rf := min(3, len(c.Nodes()))
	topic := fmt.Sprintf("exactly-cluster-test-%d", time.Now().UnixNano())
	created, err := adm.CreateTopic(ctx, numPartitions, int16(rf), nil, topic)
	require.NoError(t, err)
	require.NoError(t, created.Err)
	t.Cleanup(func() {
		// A fresh client: admCl may still hold a connection to the node
		// that was killed, and kgo does not retry a DeleteTopics that was
		// written to a connection that then died.
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
		if err != nil {
			t.Logf("deleting topic %s: %v", topic, err)
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resps, err := kadm.NewClient(cl).DeleteTopics(ctx, topic)
		if err == nil {
			err = resps.Error()
		}
		if err != nil {
			t.Logf("deleting topic %s: %v", topic, err)
		}
	})

	producer, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.TransactionalID(topic+"-txn"),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	require.NoError(t, err)
	defer producer.Close()

	// produceTxn writes "<tag>-<partition>" to every partition in one
	// transaction, then commits or aborts it.
	produceTxn := func(tag string, commit bool) {
		t.Helper()
		start := time.Now()
		require.NoError(t, producer.BeginTransaction())
		recs := make([]*kgo.Record, numPartitions)
		for p := range recs {
			recs[p] = &kgo.Record{Partition: int32(p), Value: fmt.Appendf(nil, "%s-%d", tag, p)}
		}
		require.NoError(t, producer.ProduceSync(ctx, recs...).FirstErr(), "producing %s", tag)
		require.NoError(t, producer.EndTransaction(ctx, kgo.TransactionEndTry(commit)), "ending transaction %s", tag)
		t.Logf("transaction %q (commit=%v) took %v", tag, commit, time.Since(start).Round(time.Millisecond))
	}

	produceTxn("before", true)
	produceTxn("aborted", false)

	if len(c.Nodes()) < 3 {
		// A single node restarting after SIGKILL can lose an abort whose
		// markers were not yet written: the restarted broker is fenced once
		// (session timeout) while its coordinator resumes the abort, the
		// coordinator finds no partition leader, skips the markers as if the
		// topic were deleted, and the next committed transaction of the same
		// producer then makes the aborted records visible (Kafka 4.3.1, seen
		// in about a third of runs). That is a broker behaviour, not what this
		// test is about, so crash only once the abort is on the partitions.
		waitMarkersWritten(ctx, t, adm, topic)
	}

	victim := leaderOf(ctx, t, adm, topic, 0)
	t.Cleanup(func() {
		// Leave the cluster whole for whatever runs next, even on failure.
		if up, err := c.Running(victim); err == nil && !up {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := c.Start(ctx, victim); err != nil {
				t.Errorf("restarting node %d in cleanup: %v", victim, err)
			}
		}
	})
	t.Logf("killing node %d, leader of %s/0", victim, topic)
	require.NoError(t, c.Kill(victim))
	up, err := c.Running(victim)
	require.NoError(t, err)
	require.False(t, up, "node %d still running after Kill", victim)

	want := []string{"before"}
	if len(c.Nodes()) >= 3 {
		produceTxn("during", true)
		want = append(want, "during")
	}

	start := time.Now()
	require.NoError(t, c.Start(ctx, victim))
	require.NoError(t, c.WaitReady(ctx))
	t.Logf("node %d back after %v", victim, time.Since(start).Round(time.Millisecond))

	produceTxn("after", true)
	want = append(want, "after")

	got := consumeCommitted(ctx, t, seeds, topic, len(want))
	for p := range numPartitions {
		exp := make([]string, len(want))
		for i, tag := range want {
			exp[i] = fmt.Sprintf("%s-%d", tag, p)
		}
		require.Equal(t, exp, got[int32(p)], "read_committed records of partition %d", p)
	}
}

// waitMarkersWritten waits until every partition of topic has no open
// transaction: its last stable offset (what ListCommittedOffsets returns)
// has caught up with its high watermark.
func waitMarkersWritten(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		require.NoError(t, err)
		require.NoError(t, ends.Error())
		stable, err := adm.ListCommittedOffsets(ctx, topic)
		require.NoError(t, err)
		require.NoError(t, stable.Error())
		open := 0
		ends.Each(func(end kadm.ListedOffset) {
			if s, ok := stable.Lookup(end.Topic, end.Partition); !ok || s.Offset < end.Offset {
				open++
			}
		})
		if open == 0 {
			return
		}
		select {
		case <-ctx.Done():
			require.FailNow(t, "transaction markers not written", "%s: %v", topic, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leaderOf waits until partition p of topic has a leader and returns it.
func leaderOf(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, p int32) int {
	t.Helper()
	for {
		topics, err := adm.ListTopics(ctx, topic)
		require.NoError(t, err)
		if d, ok := topics[topic].Partitions[p]; ok && d.Err == nil && d.Leader >= 0 {
			return int(d.Leader)
		}
		select {
		case <-ctx.Done():
			require.FailNow(t, "no leader for partition", "%s/%d: %v", topic, p, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// consumeCommitted reads topic from the start with read_committed until
// every partition has perPartition records (the last committed transaction is
// the last thing on each partition, so an aborted record that leaked would
// show up before that point) and returns the values by partition.
func consumeCommitted(ctx context.Context, t *testing.T, seeds []string, topic string, perPartition int) map[int32][]string {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	require.NoError(t, err)
	defer cl.Close()

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	got := make(map[int32][]string)
	done := func() bool {
		for p := range numPartitions {
			if len(got[int32(p)]) < perPartition {
				return false
			}
		}
		return true
	}
	for !done() {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			require.FailNow(t, "timed out consuming", "got %v", got)
		}
		for _, fe := range fetches.Errors() {
			require.NoError(t, fe.Err, "fetching %s/%d", fe.Topic, fe.Partition)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
		})
	}
	return got
}
