package admin

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// provision creates the pipeline's topics with prefix, 3 partitions.
func provision(t *testing.T, cl *kgo.Client, prefix string) Pipeline {
	t.Helper()
	p := OrderPipeline(prefix, "", "")
	r, err := CreateTopics(ctxT(t), cl, p, TopicsConfig{Partitions: 3, ReplicationFactor: -1, MinInsyncReplicas: 2})
	require.NoError(t, err)
	require.True(t, r.OK(), "%v", r.Mismatches)
	return p
}

func commit(t *testing.T, adm *kadm.Client, group, topic string, offsets map[int32]int64) {
	t.Helper()
	os := kadm.Offsets{}
	for p, at := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	}
	require.NoError(t, adm.CommitAllOffsets(ctxT(t), group, os))
}

// txnClient returns a transactional client writing to chosen partitions.
func txnClient(t *testing.T, cl *kgo.Client, id string) *kgo.Client {
	t.Helper()
	seeds := cl.OptValue(kgo.SeedBrokers).([]string)
	tc, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.TransactionalID(id),
		kgo.TransactionTimeout(5*time.Minute), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	return tc
}

func produceTxn(t *testing.T, tc *kgo.Client, topic string, p int32, n int, commit bool) {
	t.Helper()
	require.NoError(t, tc.BeginTransaction())
	for i := range n {
		require.NoError(t, tc.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Partition: p, Value: []byte{byte(i)}}).FirstErr())
	}
	if commit {
		require.NoError(t, tc.EndTransaction(ctxT(t), kgo.TryCommit))
	}
}

func doctorRun(t *testing.T, cl *kgo.Client, p Pipeline, o DoctorOptions) *Report {
	t.Helper()
	r, err := Doctor(ctxT(t), cl, p, o)
	require.NoError(t, err)
	return r
}

func groupOf(r *Report, name string) Group {
	i := slices.IndexFunc(r.Groups, func(g Group) bool { return g.Name == name })
	if i < 0 {
		return Group{}
	}
	return r.Groups[i]
}

func partitionIn(r *Report, topic string, p int32) Partition {
	i := slices.IndexFunc(r.Partitions, func(x Partition) bool { return x.Topic == topic && x.Partition == p })
	if i < 0 {
		return Partition{}
	}
	return r.Partitions[i]
}

func findingsOf(r *Report, check string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

// TestDoctorHealthy: topics provisioned, both groups caught up, the
// payment group on a transactionally written input. Caught up there means
// a commit one below the end (the commit marker takes the last offset): an
// offset lag of 1 that holds no record, so no finding.
func TestDoctorHealthy(t *testing.T) {
	t.Parallel()
	_, cl, adm := newCluster(t)
	p := provision(t, cl, "ok-")
	produce(t, cl, "ok-orders", 0, 5)
	produceTxn(t, txnClient(t, cl, "ok-exactly-orders-o1"), "ok-order-events", 1, 3, true)
	commit(t, adm, "ok-exactly-orders", "ok-orders", map[int32]int64{0: 5, 1: 0, 2: 0})
	commit(t, adm, "ok-exactly-payments", "ok-order-events", map[int32]int64{0: 0, 1: 3, 2: 0})

	r := doctorRun(t, cl, p, DoctorOptions{})
	require.Equal(t, OK, r.Severity, "%v", r.Findings)
	require.Empty(t, r.Findings)
	require.Len(t, r.Brokers, 3)
	for _, b := range r.Brokers {
		require.True(t, b.Reachable, "%+v", b)
		require.NotEmpty(t, b.Version)
	}
	require.Len(t, r.Partitions, 8*3)
	for _, pt := range r.Partitions {
		require.Len(t, pt.ISR, 3, "%+v", pt)
		require.Equal(t, 2, pt.MinISR, "%+v", pt)
		require.Zero(t, pt.Gap(), "%+v", pt)
	}
	pay := groupOf(r, "ok-exactly-payments")
	require.Equal(t, "Empty", pay.State)
	l := pay.Lag[1]
	require.Equal(t, PartitionLag{Topic: "ok-order-events", Partition: 1, Committed: 3, LogStart: 0, LastStable: 4, HighWatermark: 4, Lag: 1, Pending: 0}, l,
		"the trailing commit marker is an offset, not a record")
	require.Zero(t, pay.TotalLag)
	require.Zero(t, groupOf(r, "ok-exactly-orders").TotalLag)
	require.Empty(t, r.Transactions)
}

// TestDoctorHangingTransaction leaves a transaction open on order-events
// partition 2 and another, named like an instance of the payment stage, on
// payments partition 0: the doctor names both transactional ids, the
// partitions whose last stable offset they hold, and the gaps.
func TestDoctorHangingTransaction(t *testing.T) {
	t.Parallel()
	_, cl, adm := newCluster(t)
	p := provision(t, cl, "h-")
	commit(t, adm, "h-exactly-orders", "h-orders", map[int32]int64{0: 0, 1: 0, 2: 0})
	commit(t, adm, "h-exactly-payments", "h-order-events", map[int32]int64{0: 0, 1: 0, 2: 0})
	produceTxn(t, txnClient(t, cl, "hang-1"), "h-order-events", 2, 2, false)
	produceTxn(t, txnClient(t, cl, "h-exactly-payments-p1"), "h-payments", 0, 1, false)

	// Young transactions: listed and named as holders, not findings.
	r := doctorRun(t, cl, p, DoctorOptions{TxnThreshold: time.Hour})
	require.Empty(t, findingsOf(r, CheckTransactions), "%v", r.Findings)
	require.Empty(t, findingsOf(r, CheckStable), "%v", r.Findings)
	require.Len(t, r.Transactions, 2)
	require.Equal(t, "hang-1", partitionIn(r, "h-order-events", 2).HeldBy.TransactionalID)

	var hang *Finding
	waitFor(t, 10*time.Second, "both hanging transactions reported", func() bool {
		r = doctorRun(t, cl, p, DoctorOptions{TxnThreshold: 50 * time.Millisecond})
		return len(findingsOf(r, CheckTransactions)) == 2
	})
	for _, f := range findingsOf(r, CheckTransactions) {
		if f.Subject == "hang-1" {
			hang = &f
		}
	}
	require.NotNil(t, hang, "%v", r.Findings)
	require.Equal(t, Critical, hang.Severity)
	require.Equal(t, Critical, r.Severity)
	require.Contains(t, hang.Message, "holds back the last stable offset of h-order-events[2]")

	gap := partitionIn(r, "h-order-events", 2)
	require.EqualValues(t, 2, gap.Gap(), "%+v", gap)
	require.EqualValues(t, 0, gap.LastStable)
	require.NotNil(t, gap.HeldBy)
	require.Equal(t, "hang-1", gap.HeldBy.TransactionalID)
	require.EqualValues(t, 0, gap.HeldBy.StartOffset)
	require.GreaterOrEqual(t, gap.HeldBy.AgeMillis, int64(0))

	i := slices.IndexFunc(r.Transactions, func(x Transaction) bool { return x.TransactionalID == "hang-1" })
	require.GreaterOrEqual(t, i, 0)
	require.Equal(t, "Ongoing", r.Transactions[i].State)
	require.Equal(t, []string{"h-order-events[2]"}, r.Transactions[i].HoldsBack)
	require.Equal(t, map[string][]int32{"h-order-events": {2}}, r.Transactions[i].Partitions)
	require.EqualValues(t, 5*time.Minute/time.Millisecond, r.Transactions[i].TimeoutMillis)

	inst := slices.IndexFunc(r.Findings, func(f Finding) bool { return f.Subject == "h-exactly-payments-p1" })
	require.GreaterOrEqual(t, inst, 0, "%v", r.Findings)
	require.Contains(t, r.Findings[inst].Message, `restarting instance "p1" of group h-exactly-payments`)
	require.Equal(t, "h-exactly-payments-p1", partitionIn(r, "h-payments", 0).HeldBy.TransactionalID)

	// The payment group reads order-events with read_committed: the open
	// transaction's records are not lag yet.
	require.Zero(t, groupOf(r, "h-exactly-payments").TotalLag)
}

// TestDoctorLag commits the order group below the end: the lag shows per
// partition, counted record by record when small, in offsets when above
// the probe limit; a group without members and with records waiting is a
// warning, and a group that never ran is one too.
func TestDoctorLag(t *testing.T) {
	t.Parallel()
	_, cl, adm := newCluster(t)
	p := provision(t, cl, "l-")
	produce(t, cl, "l-orders", 0, 10)
	produce(t, cl, "l-orders", 1, 10)
	commit(t, adm, "l-exactly-orders", "l-orders", map[int32]int64{0: 8})

	r := doctorRun(t, cl, p, DoctorOptions{ProbeLimit: 5})
	g := groupOf(r, "l-exactly-orders")
	require.Equal(t, "Empty", g.State)
	require.Empty(t, g.Members)
	require.Equal(t, PartitionLag{Topic: "l-orders", Partition: 0, Committed: 8, LogStart: 0, LastStable: 10, HighWatermark: 10, Lag: 2, Pending: 2}, g.Lag[0])
	require.Equal(t, PartitionLag{Topic: "l-orders", Partition: 1, Committed: -1, LogStart: 0, LastStable: 10, HighWatermark: 10, Lag: 10, Pending: -1}, g.Lag[1],
		"no commit: measured from the log start; above the probe limit: not counted")
	require.EqualValues(t, 12, g.TotalLag)

	lag := findingsOf(r, CheckLag)
	require.Len(t, lag, 1, "%v", r.Findings)
	require.Equal(t, Warning, lag[0].Severity)
	require.Equal(t, "l-exactly-orders", lag[0].Subject)
	require.Contains(t, lag[0].Message, "12 records wait in l-orders")

	groups := findingsOf(r, CheckGroups)
	require.Len(t, groups, 1, "%v", r.Findings)
	require.Equal(t, "l-exactly-payments", groups[0].Subject)
	require.Contains(t, groups[0].Message, "group does not exist")
	require.Equal(t, "Dead", groupOf(r, "l-exactly-payments").State)
	require.Equal(t, Warning, r.Severity)

	// A running member: lag below MaxLag is no finding.
	seeds := cl.OptValue(kgo.SeedBrokers).([]string)
	member, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup("l-exactly-orders"), kgo.ConsumeTopics("l-orders"),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer member.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitFor(t, 15*time.Second, "the member joined", func() bool {
		pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		member.PollFetches(pctx) // joins; commits nothing
		pcancel()
		g = groupOf(doctorRun(t, cl, p, DoctorOptions{}), "l-exactly-orders")
		return g.State == "Stable" && len(g.Members) == 1
	})
	require.Equal(t, map[string][]int32{"l-orders": {0, 1, 2}}, g.Members[0].Assigned)
	require.Equal(t, g.Members[0].ID, g.Lag[0].Member)
	r = doctorRun(t, cl, p, DoctorOptions{})
	require.Empty(t, findingsOf(r, CheckLag), "%v", r.Findings)
	r = doctorRun(t, cl, p, DoctorOptions{MaxLag: 5})
	require.Len(t, findingsOf(r, CheckLag), 1, "%v", r.Findings)
	require.Contains(t, findingsOf(r, CheckLag)[0].Message, "more than 5")
}

// TestDoctorMissingTopics: nothing provisioned, one warning per topic.
func TestDoctorMissingTopics(t *testing.T) {
	t.Parallel()
	_, cl, _ := newCluster(t)
	p := OrderPipeline("none-", "", "")
	r := doctorRun(t, cl, p, DoctorOptions{})
	require.Len(t, findingsOf(r, CheckProvisioning), len(p.Topics()), "%v", r.Findings)
	require.Equal(t, Warning, r.Severity)
	require.Empty(t, r.Partitions)
}

// TestDoctorUnreachable: a refused connection fails the first request at
// once, long before the connect timeout, and the finding said "no broker
// answers within 15s" all the same. It now says what was asked and that it
// failed at once; only a broker that stays silent is reported as not
// answering within the timeout.
func TestDoctorUnreachable(t *testing.T) {
	t.Parallel()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	require.NoError(t, err)
	defer cl.Close()
	begin := time.Now()
	r := doctorRun(t, cl, OrderPipeline("", "", ""), DoctorOptions{ConnectTimeout: 15 * time.Second})
	require.Less(t, time.Since(begin), 10*time.Second)
	require.Equal(t, Critical, r.Severity)
	require.Len(t, r.Findings, 1)
	require.Equal(t, CheckBrokers, r.Findings[0].Check)
	msg := r.Findings[0].Message
	require.Regexp(t, `^no answer from the seed brokers 127\.0\.0\.1:1: asking for metadata failed at once \(connect timeout 15s\): .*connection refused`, msg)
}

// TestDoctorSilentBroker: a broker that accepts connections and never
// answers is given up on after the wait the message names.
func TestDoctorSilentBroker(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() { // holds connections open, never answers
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()), kgo.RequestTimeoutOverhead(time.Second))
	require.NoError(t, err)
	defer cl.Close()
	r := doctorRun(t, cl, OrderPipeline("", "", ""), DoctorOptions{ConnectTimeout: 300 * time.Millisecond})
	ln.Close() // and the held connections
	require.Len(t, r.Findings, 1)
	require.Regexp(t, `^no answer from the seed brokers `+ln.Addr().String()+`: asking for metadata failed after \d+\.\d+s \(connect timeout 300ms\): .*timeout`, r.Findings[0].Message)
}

func TestReplicationFindings(t *testing.T) {
	part := func(topic string, p, leader int32, replicas, isr []int32, minISR int) Partition {
		return Partition{Topic: topic, Partition: p, Leader: leader, Replicas: replicas, ISR: isr, MinISR: minISR}
	}
	three := []int32{1, 2, 3}
	for name, tc := range map[string]struct {
		parts []Partition
		want  []Finding
	}{
		"healthy": {parts: []Partition{part("a", 0, 1, three, three, 2)}},
		"offline": {
			parts: []Partition{part("a", 0, -1, three, nil, 2), part("a", 1, -1, three, nil, 2)},
			want:  []Finding{{Critical, CheckReplication, "a", "offline partitions: 0 (leader -1), 1 (leader -1); nothing can read or write them"}},
		},
		"below min isr": {
			parts: []Partition{part("a", 0, 1, three, []int32{1}, 2)},
			want:  []Finding{{Critical, CheckReplication, "a", "partitions below min.insync.replicas=2: 0 (isr [1] of [1 2 3]); every transaction writing them fails"}},
		},
		"at min isr": {
			parts: []Partition{part("a", 0, 1, three, []int32{1, 2}, 2)},
			want:  []Finding{{Warning, CheckReplication, "a", "partitions at min.insync.replicas=2: 0 (isr [1 2] of [1 2 3]); one more replica lost stops writes"}},
		},
		"under-replicated": {
			parts: []Partition{{Topic: "b", Partition: 3, Leader: 1, Replicas: three, ISR: []int32{1, 2}, Offline: []int32{3}, MinISR: 1}},
			want:  []Finding{{Warning, CheckReplication, "b", "under-replicated partitions: 3 (isr [1 2] of [1 2 3], offline [3])"}},
		},
		"min isr equal to replicas is not at-min": {parts: []Partition{part("a", 0, 1, []int32{1, 2}, []int32{1, 2}, 2)}},
		"one finding per topic and kind": {
			parts: []Partition{
				part("a", 0, 1, three, []int32{1, 2}, 1), part("a", 1, 1, three, []int32{1, 3}, 1),
				part("c", 0, 2, three, []int32{2, 3}, 1),
			},
			want: []Finding{
				{Warning, CheckReplication, "a", "under-replicated partitions: 0 (isr [1 2] of [1 2 3]), 1 (isr [1 3] of [1 2 3])"},
				{Warning, CheckReplication, "c", "under-replicated partitions: 0 (isr [2 3] of [1 2 3])"},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := &Report{Partitions: tc.parts}
			replicationFindings(r)
			require.Equal(t, tc.want, r.Findings)
			sev := OK
			for _, f := range tc.want {
				sev = max(sev, f.Severity)
			}
			require.Equal(t, sev, r.Severity)
		})
	}
}

func TestSeverityText(t *testing.T) {
	for _, s := range []Severity{OK, Warning, Critical} {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back Severity
		require.NoError(t, back.UnmarshalText(b))
		require.Equal(t, s, back)
	}
	require.Error(t, new(Severity).UnmarshalText([]byte("fatal")))
	_, err := Severity(7).MarshalText()
	require.Error(t, err)
}

// TestDoctorProvisioning: what makes a stage refuse to start or lose state
// is critical in the doctor too, whatever partition count was wanted.
func TestDoctorProvisioning(t *testing.T) {
	t.Parallel()
	_, cl, adm := newCluster(t)
	mkTopic(t, adm, "pv-exactly-orders-customers-changelog", 2, -1, "cleanup.policy", "delete")
	mkTopic(t, adm, "pv-payments", 3, -1, "min.insync.replicas", "4")
	p := OrderPipeline("pv-", "", "")
	r, err := CreateTopics(ctxT(t), cl, p, TopicsConfig{Partitions: 4, ReplicationFactor: -1})
	require.NoError(t, err)
	require.Len(t, r.Created, 6)

	r2 := doctorRun(t, cl, p, DoctorOptions{})
	var got []string
	for _, f := range findingsOf(r2, CheckProvisioning) {
		got = append(got, f.Severity.String()+" "+f.Subject+": "+f.Message)
	}
	require.ElementsMatch(t, []string{
		"critical pv-exactly-orders-customers-changelog: has 2 partitions but its input pv-orders has 4: the stage refuses to start",
		"critical pv-exactly-orders-customers-changelog: changelog has cleanup.policy=delete, want compact: the stage refuses to start, and deletion would lose state",
		"warning pv-payments: has 3 partitions but its input pv-order-events has 4",
		"critical pv-payments: min.insync.replicas=4 exceeds the replication factor 3: every acks=all write fails",
	}, got)
}
