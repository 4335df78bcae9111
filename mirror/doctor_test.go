package mirror

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/admin"
)

// doctor runs Doctor on mirror mm of topics between the clusters.
func (c *clusters) doctor(t *testing.T, topics []string, o DoctorOptions) *DoctorReport {
	t.Helper()
	o.Timeout = 10 * time.Second
	r, err := Doctor(ctxT(t), c.srcCl, c.tgtCl, "mm", topics, o)
	require.NoError(t, err)
	var b strings.Builder
	_, err = r.WriteTo(&b)
	require.NoError(t, err)
	t.Logf("%s", b.String())
	return r
}

// findings returns the report's findings of check.
func findings(r *DoctorReport, check string) []admin.Finding {
	var out []admin.Finding
	for _, f := range r.Findings {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

func subjects(fs []admin.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Subject)
	}
	slices.Sort(out)
	return out
}

// produce writes n records keyed prefix-i to topic on the source, outside
// transactions.
func (c *clusters) produce(t *testing.T, topic, prefix string, n int) {
	t.Helper()
	for i := range n {
		r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%s-%d", prefix, i), Value: []byte("v")}
		require.NoError(t, c.srcCl.ProduceSync(ctxT(t), r).FirstErr())
	}
}

// TestDoctorHealthyMirror: a caught-up mirror is healthy, running or
// stopped, and a transactional source's commit markers (a lag of one
// offset per partition with nothing to copy) are neither lag nor stuck.
func TestDoctorHealthyMirror(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 2)
	c.produce(t, "events", "plain", 10)
	produceTxn(t, c.producer(t, "src-txn"), "events", "txn", 10, true, time.Now())
	r := start(t, c.newMirror(t, "i1"))
	c.waitMirrored(t, []string{"events"}, 30*time.Second)

	rep := c.doctor(t, []string{"events"}, DoctorOptions{Sample: 200 * time.Millisecond})
	require.Equal(t, admin.OK, rep.Severity, "%v", rep.Findings)
	require.Empty(t, rep.Findings)
	require.Len(t, rep.Partitions, 2)
	for _, p := range rep.Partitions {
		require.Equal(t, "events", p.TargetTopic)
		require.GreaterOrEqual(t, p.Position, int64(0), "%+v", p)
		require.Zero(t, p.Waiting(), "%+v", p)
	}
	require.Equal(t, 1, rep.Members)

	require.NoError(t, r.stop(t))
	rep = c.doctor(t, []string{"events"}, DoctorOptions{Sample: 200 * time.Millisecond, MaxLag: 1})
	require.Equal(t, admin.OK, rep.Severity, "a stopped, caught-up mirror: %v", rep.Findings)
}

// TestDoctorLaggingAndStuck: a stopped mirror while the source grows lags
// (a warning above MaxLag) and, watched over a window, is stuck with
// nothing moving at all: critical.
func TestDoctorLaggingAndStuck(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 1)
	c.produce(t, "events", "a", 5)
	r := start(t, c.newMirror(t, "i1"))
	c.waitMirrored(t, []string{"events"}, 30*time.Second)
	require.NoError(t, r.stop(t))
	c.produce(t, "events", "b", 20)

	rep := c.doctor(t, []string{"events"}, DoctorOptions{MaxLag: 10})
	require.Equal(t, admin.Warning, rep.Severity, "%v", rep.Findings)
	lag := findings(rep, admin.CheckLag)
	require.Len(t, lag, 1, "%v", rep.Findings)
	require.Equal(t, "events[0]", lag[0].Subject)
	require.Contains(t, lag[0].Message, "20 records wait to be copied (position 5, last stable offset 25; threshold 10)")
	require.Empty(t, findings(rep, CheckStuck), "no window, no stuck check")
	require.Equal(t, PartitionHealth{Topic: "events", TargetTopic: "events", Partition: 0, LogStart: 0, LastStable: 25, Position: 5, Sampled: -1, Lag: 20, Pending: 20}, rep.Partitions[0])

	rep = c.doctor(t, []string{"events"}, DoctorOptions{Sample: 200 * time.Millisecond})
	require.Equal(t, admin.Critical, rep.Severity, "%v", rep.Findings)
	stuck := findings(rep, CheckStuck)
	require.Len(t, stuck, 1, "%v", rep.Findings)
	require.Equal(t, admin.Critical, stuck[0].Severity)
	require.Contains(t, stuck[0].Message, "no position of the mirror moved in 200ms: no instance copies (source group mm: Empty, 0 members)")
	require.Empty(t, findings(rep, admin.CheckLag), "20 records are below the default MaxLag")
}

// TestDoctorOneTopicStuck: while the mirror copies one topic, a topic it
// no longer copies is stuck, a warning rather than critical.
func TestDoctorOneTopicStuck(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 1)
	mkTopic(t, c.srcAdm, "other", 2)
	c.produce(t, "events", "a", 3)
	c.produce(t, "other", "a", 3)
	r := start(t, c.newMirror(t, "i1", Topics("events", "other")))
	c.waitMirrored(t, []string{"events", "other"}, 30*time.Second)
	require.NoError(t, r.stop(t))
	c.produce(t, "other", "b", 10)
	start(t, c.newMirror(t, "i2")) // events only

	// Keep events moving while the doctor watches.
	ctx, stop := context.WithCancel(ctxT(t))
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			_ = c.srcCl.ProduceSync(ctx, &kgo.Record{Topic: "events", Key: fmt.Appendf(nil, "c-%d", i)}).FirstErr()
			time.Sleep(20 * time.Millisecond)
		}
	})
	rep := c.doctor(t, []string{"events", "other"}, DoctorOptions{Sample: time.Second})
	stop()
	wg.Wait()
	stuck := findings(rep, CheckStuck)
	require.NotEmpty(t, stuck, "%v", rep.Findings)
	for _, f := range stuck {
		require.Equal(t, admin.Warning, f.Severity, "%v", f)
		require.Contains(t, f.Message, "while other partitions did")
		require.True(t, strings.HasPrefix(f.Subject, "other["), "%v", f)
	}
	require.Equal(t, admin.Warning, rep.Severity, "%v", rep.Findings)
}

// TestDoctorTopicProblems: what makes the mirror refuse to start, or copy
// again from the start, is critical.
func TestDoctorTopicProblems(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		prefix  string
		setup   func(t *testing.T, c *clusters)
		subject string
		want    string
	}{
		"offsets topic missing": {"", func(t *testing.T, c *clusters) {
			mkTopic(t, c.tgtAdm, "events", 2)
		}, "mm-mirror-offsets", "offsets topic missing"},
		"offsets topic not compacted": {"", func(t *testing.T, c *clusters) {
			mkTopic(t, c.tgtAdm, "events", 2)
			mkTopic(t, c.tgtAdm, "mm-mirror-offsets", 1, "cleanup.policy", "delete")
		}, "mm-mirror-offsets", "cleanup.policy=delete, want compact"},
		"partition mismatch": {"dc1.", func(t *testing.T, c *clusters) {
			mkTopic(t, c.tgtAdm, "dc1.events", 3)
			mkTopic(t, c.tgtAdm, "mm-mirror-offsets", 1, "cleanup.policy", "compact")
		}, "dc1.events", "3 partitions, source topic events has 2"},
		"target topic missing": {"dc1.", func(t *testing.T, c *clusters) {
			mkTopic(t, c.tgtAdm, "events", 2) // not the renamed one
			mkTopic(t, c.tgtAdm, "mm-mirror-offsets", 1, "cleanup.policy", "compact")
		}, "dc1.events", "target topic of events missing"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newClusters(t)
			mkTopic(t, c.srcAdm, "events", 2)
			tc.setup(t, c)
			rep := c.doctor(t, []string{"events"}, DoctorOptions{RenamePrefix: tc.prefix})
			require.Equal(t, admin.Critical, rep.Severity)
			require.Len(t, rep.Findings, 1, "%v", rep.Findings)
			f := rep.Findings[0]
			require.Equal(t, admin.CheckProvisioning, f.Check)
			require.Equal(t, tc.subject, f.Subject)
			require.Contains(t, f.Message, tc.want)
		})
	}
	t.Run("source topic missing", func(t *testing.T) {
		t.Parallel()
		c := newClusters(t)
		rep := c.doctor(t, []string{"gone"}, DoctorOptions{})
		require.Equal(t, admin.Critical, rep.Severity)
		require.Equal(t, []string{"gone", "mm-mirror-offsets"}, subjects(rep.Findings))
		require.Contains(t, rep.Findings[0].Message, "source topic missing")
	})
}

// TestDoctorHangingTransaction: a transaction of the mirror's
// transactional IDs left open on the target is reported once older than
// the threshold; another application's is not the mirror's business.
func TestDoctorHangingTransaction(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 2)
	mkTopic(t, c.tgtAdm, "events", 2)
	mkTopic(t, c.tgtAdm, "mm-mirror-offsets", 1, "cleanup.policy", "compact")
	for _, id := range []string{"mm/events/1", "other-app-1"} {
		cl := newClient(t, c.tgt, kgo.TransactionalID(id), kgo.TransactionTimeout(5*time.Minute), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		require.NoError(t, cl.BeginTransaction())
		require.NoError(t, cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "events", Partition: 1, Value: []byte("x")}).FirstErr())
	}

	var rep *DoctorReport
	deadline := time.Now().Add(20 * time.Second)
	for {
		rep = c.doctor(t, []string{"events"}, DoctorOptions{TxnThreshold: 100 * time.Millisecond})
		if len(rep.Findings) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, admin.Warning, rep.Severity, "%v", rep.Findings)
	require.Len(t, rep.Findings, 1, "%v", rep.Findings)
	f := rep.Findings[0]
	require.Equal(t, admin.CheckTransactions, f.Check)
	require.Equal(t, "mm/events/1", f.Subject)
	require.Contains(t, f.Message, "transaction timeout 5m0s")
	require.Contains(t, f.Message, "wrote events[1]")
	require.Len(t, rep.Transactions, 1)
	require.Equal(t, "Ongoing", rep.Transactions[0].State)
}
