package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/internal/cluster"
	"github.com/exactly-stream/exactly/internal/crashpoint"
	"github.com/exactly-stream/exactly/mirror"
)

// The mirror's killed-process and fault tests: `exactly mirror` runs as
// child processes between a source and a target cluster, and after every
// scenario mirror.Verify must find the target equal to the source record
// by record (nothing missing, nothing extra, no mismatch), and the target
// must hold exactly the records of the source's committed transactions.
//
// The clusters are KAFKA_BROKERS (source) and KAFKA_TARGET_BROKERS
// (target) when both are set (integration/kafka/test.sh starts a
// three-node source and a one-node target; KAFKA_TARGET_DIR is the
// target's cluster.sh run directory, for the test that kills its broker).
// Otherwise each test starts two in-process kfake clusters.

// The mirror's crash points, in the order a transaction reaches them.
var mirrorCrashPoints = crashpoint.Mirror

// abortedMarker is in the value of every record the source writers abort.
const abortedMarker = "ABORTED"

// mirrorEnv is one mirror test's clusters, topics and processes.
type mirrorEnv struct {
	t        *testing.T
	src, tgt []string
	real     bool
	// srcFake and tgtFake are the in-process clusters, nil on real ones.
	srcFake, tgtFake *kfake.Cluster
	name             string   // the mirror's name
	topics           []string // the mirrored source topics
	srcCl, tgtCl     *kgo.Client
	wg               sync.WaitGroup
}

// newMirrorEnv returns a test's clusters with two fresh source topics of
// three partitions each. With kfakeOnly it starts kfake clusters whatever
// the environment says: for tests that inject faults through kfake.
func newMirrorEnv(t *testing.T, kfakeOnly bool) *mirrorEnv {
	me := &mirrorEnv{t: t}
	src, tgt := os.Getenv("KAFKA_BROKERS"), os.Getenv("KAFKA_TARGET_BROKERS")
	if src != "" && tgt != "" && !kfakeOnly {
		me.src, me.tgt, me.real = strings.Split(src, ","), strings.Split(tgt, ","), true
	} else {
		for _, c := range []**kfake.Cluster{&me.srcFake, &me.tgtFake} {
			kc, err := kfake.NewCluster(kfake.NumBrokers(1))
			require.NoError(t, err)
			t.Cleanup(kc.Close)
			*c = kc
		}
		me.src, me.tgt = me.srcFake.ListenAddrs(), me.tgtFake.ListenAddrs()
	}
	// Unique names: a real cluster keeps every test's topics, groups and
	// transactional IDs.
	prefix := fmt.Sprintf("mt-%s-%d-", regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-"), rand.IntN(1e6))
	me.name = prefix + "mirror"
	me.topics = []string{prefix + "a", prefix + "b"}
	me.srcCl, me.tgtCl = me.client(me.src), me.client(me.tgt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(me.srcCl).CreateTopics(ctx, 3, -1, nil, me.topics...)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	t.Cleanup(me.wg.Wait)
	return me
}

func (me *mirrorEnv) client(brokers []string, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
	require.NoError(me.t, err)
	me.t.Cleanup(cl.Close)
	return cl
}

// spawn starts `exactly mirror` as instance id with the test settings (a
// short session timeout, commit interval and transaction timeout); o.args
// come last and so override them.
func (me *mirrorEnv) spawn(id string, o spawnOpts) *child {
	me.t.Helper()
	args := []string{"mirror", "--source-brokers", strings.Join(me.src, ","), "--target-brokers", strings.Join(me.tgt, ","),
		"--topics", strings.Join(me.topics, ","), "--name", me.name, "--instance-id", id,
		"--session-timeout", "6s", "--commit-interval", "100ms", "--transaction-timeout", "5s"}
	return startChild(me.t, &me.wg, "mirror instance "+id, id, orBinary(o.bin), append(args, o.args...), append(os.Environ(), o.env...))
}

// sourceWriter writes keyed records into the source topics, in
// transactions, some of them aborted; it counts what it committed.
type sourceWriter struct {
	me        *mirrorEnv
	cl        *kgo.Client
	id        string
	seq       int
	txns      int
	committed atomic.Int64
	aborted   atomic.Int64
}

func (me *mirrorEnv) newWriter(id string) *sourceWriter {
	txnID := me.name + "-writer-" + id
	return &sourceWriter{me: me, id: id, cl: me.client(me.src, kgo.TransactionalID(txnID), kgo.TransactionTimeout(10*time.Second))}
}

// write writes txns transactions of size records each, records spread
// over the topics; every fourth transaction is aborted.
func (w *sourceWriter) write(ctx context.Context, txns, size int) error {
	for range txns {
		commit := w.txns%4 != 3
		w.txns++
		if err := w.cl.BeginTransaction(); err != nil {
			return fmt.Errorf("beginning: %w", err)
		}
		recs := make([]*kgo.Record, size)
		for i := range recs {
			v := "committed"
			if !commit {
				v = abortedMarker
			}
			recs[i] = &kgo.Record{
				Topic: w.me.topics[w.seq%len(w.me.topics)], Key: fmt.Appendf(nil, "%s-%d", w.id, w.seq),
				Value: fmt.Appendf(nil, "%s-%d-%s", w.id, w.seq, v), Headers: []kgo.RecordHeader{{Key: "writer", Value: []byte(w.id)}},
			}
			w.seq++
		}
		if err := w.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("producing: %w", err)
		}
		if err := w.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			return fmt.Errorf("ending: %w", err)
		}
		if commit {
			w.committed.Add(int64(size))
		} else {
			w.aborted.Add(int64(size))
		}
	}
	return nil
}

// background writes transactions of 20 records, one about every 20 ms,
// until the returned stop is called; stop waits for the writer to finish.
// It may be called more than once; the test's cleanup calls it too.
func (w *sourceWriter) background() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	w.me.wg.Go(func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := w.write(ctx, 1, 20)
			cancel()
			if err != nil {
				w.me.t.Errorf("writer %s: %v", w.id, err)
				return
			}
		}
	})
	stop = sync.OnceFunc(func() {
		close(quit)
		<-done
	})
	w.me.t.Cleanup(stop)
	return stop
}

// verify runs mirror.Verify: up to the mirrored positions, or whole.
func (me *mirrorEnv) verify(whole bool) (*mirror.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := mirror.VerifyOptions{Timeout: 20 * time.Second}
	if !whole {
		opts.OffsetsTopic = me.name + "-mirror-offsets"
	}
	return mirror.Verify(ctx, me.srcCl, me.tgtCl, me.topics, opts)
}

// violations counts the differences that never heal: an extra or a
// mismatched record up to the mirrored positions (a missing one may be
// copied yet).
func violations(r *mirror.Report) int {
	n := 0
	for _, p := range r.Partitions {
		for _, d := range p.Differences {
			if d.Kind != mirror.Missing {
				n++
			}
		}
	}
	return n
}

func reportString(r *mirror.Report) string {
	if r == nil {
		return "(no report)"
	}
	var b strings.Builder
	_, _ = r.WriteTo(&b)
	return b.String()
}

// waitMirrored polls Verify until the target equals the source whole,
// calling tick (when set) on every round; it fails at once on an extra or
// mismatched record, and after timeout.
func (me *mirrorEnv) waitMirrored(timeout time.Duration, tick func()) {
	t := me.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *mirror.Report
	var lastErr error
	for time.Now().Before(deadline) {
		if tick != nil {
			tick()
		}
		rep, err := me.verify(false)
		if err == nil {
			require.Zero(t, violations(rep), "extra or mismatched copies up to the mirrored positions:\n%s", reportString(rep))
			if rep, err = me.verify(true); err == nil && rep.Differences() == 0 {
				return
			}
			last = rep
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the target did not equal the source within %s (last error: %v):\n%s", timeout, lastErr, reportString(last))
}

// finalCheck, with every mirror and writer stopped: zero differences
// whole and up to the positions, and the target holds exactly the records
// the writers committed, none they aborted.
func (me *mirrorEnv) finalCheck(writers ...*sourceWriter) {
	t := me.t
	t.Helper()
	for _, whole := range []bool{true, false} {
		rep, err := me.verify(whole)
		require.NoError(t, err)
		require.Zero(t, rep.Differences(), "whole=%v:\n%s", whole, reportString(rep))
	}
	var want, aborted int64
	for _, w := range writers {
		want += w.committed.Load()
		aborted += w.aborted.Load()
	}
	require.Positive(t, aborted, "the writers aborted nothing: the test proves less than it says")
	got := 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, topic := range me.topics {
		recs, err := exactlytest.ReadCommitted(ctx, me.tgtCl, topic, exactlytest.ReadOptions{Timeout: 30 * time.Second})
		require.NoError(t, err)
		for _, rs := range recs {
			for _, r := range rs {
				require.NotContains(t, string(r.Value), abortedMarker, "an aborted source record reached the target: %s/%d@%d", r.Topic, r.Partition, r.Offset)
				got++
			}
		}
	}
	require.EqualValues(t, want, got, "target records vs records the writers committed")
	t.Logf("%d records mirrored, %d aborted source records left out", got, aborted)
}

// positionsTotal sums the mirrored positions, -1 while they cannot be
// read within a second (a frozen instance's open transaction holds the
// offsets topic's last stable offset).
func (me *mirrorEnv) positionsTotal() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pos, err := mirror.ReadPositions(ctx, me.tgtCl, me.name+"-mirror-offsets", time.Second)
	if err != nil {
		return -1
	}
	var n int64
	for _, parts := range pos {
		for _, p := range parts {
			n += p
		}
	}
	return n
}

// waitCopying waits until the sum of the mirrored positions passes past,
// and returns it.
func (me *mirrorEnv) waitCopying(past int64, timeout time.Duration) int64 {
	me.t.Helper()
	var n int64
	waitFor(me.t, timeout, fmt.Sprintf("mirrored positions past %d in total", past), func() bool {
		n = me.positionsTotal()
		return n > past
	})
	return n
}

// TestMirrorCrashPoints makes an `exactly mirror` process SIGKILL itself
// at each of the mirror's crash points in turn (the third time it reaches
// it), while transactions, some aborted, keep arriving on the source; the
// same instance restarts and the target ends equal to the source: a
// transaction the crash left open is aborted (the restart fences it), its
// records are copied again from the committed positions, and a commit the
// crash followed is not repeated.
func TestMirrorCrashPoints(t *testing.T) {
	bin := crashpointBinary(t) // build once, before the subtests run in parallel
	for _, point := range mirrorCrashPoints {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			me := newMirrorEnv(t, false)
			w := me.newWriter("w")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			require.NoError(t, w.write(ctx, 8, 25))
			stop := w.background()

			c := me.spawn("a", spawnOpts{bin: bin, env: crashAt(point, 3)})
			c.waitCrash(t, point, 30*time.Second)
			c2 := me.spawn("a", spawnOpts{bin: bin})
			// The restart copies: its positions pass the crashed
			// instance's (readable once the restart fenced an open
			// transaction holding them).
			at := int64(-1)
			waitFor(t, time.Minute, "readable positions", func() bool { at = me.positionsTotal(); return at >= 0 })
			me.waitCopying(at, time.Minute)
			stop()
			me.waitMirrored(time.Minute, nil)
			c2.stop(t)
			me.finalCheck(w)
		})
	}
}

// TestMirrorAbortedSourceTransactions: two writers interleave committed
// and aborted transactions in the same source partitions. The mirror reads
// with read_committed, so no aborted record reaches the target and the
// committed ones keep their order.
func TestMirrorAbortedSourceTransactions(t *testing.T) {
	t.Parallel()
	me := newMirrorEnv(t, false)
	w1, w2 := me.newWriter("w1"), me.newWriter("w2")
	stop1, stop2 := w1.background(), w2.background()
	c := me.spawn("a", spawnOpts{})
	me.waitCopying(0, time.Minute)
	time.Sleep(2 * time.Second) // copy while both write
	stop1()
	stop2()
	me.waitMirrored(time.Minute, nil)
	c.stop(t)
	me.finalCheck(w1, w2)
}

// TestMirrorZombie is the regression test for a zombie mirror: instance a
// is frozen (SIGSTOP) past its source session timeout, the source group
// gives its partitions to instance b, which copies on from the committed
// positions while records keep arriving; then a wakes up (SIGCONT) with
// records taken, possibly an open transaction, and no idea yet that it
// lost its partitions. With one transactional ID per instance nothing
// stopped a from committing copies b had made too (the group lives on the
// source, so KIP-447's generation check cannot guard the target
// transaction): duplicates. With one transactional ID per source partition
// b's producer fences a's for every partition it took.
func TestMirrorZombie(t *testing.T) {
	t.Parallel()
	me := newMirrorEnv(t, false)
	w := me.newWriter("w")
	stop := w.background()
	// a collects for a second per transaction, so it is almost surely
	// holding records when frozen; its transaction timeout outlasts the
	// freeze, so the target does not abort its open transaction for it.
	a := me.spawn("a", spawnOpts{args: []string{"--commit-interval", "1s", "--transaction-timeout", "20s"}})
	me.waitCopying(me.waitCopying(0, time.Minute), time.Minute)
	woken := me.holdFirstHeartbeatAfter(3 * time.Second)
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGSTOP))
	frozen := time.Now()
	t.Log("instance a frozen")

	b := me.spawn("b", spawnOpts{})
	// b owns a's partitions once the group expelled a (6 s session
	// timeout): the positions move while a is frozen.
	before := me.positionsTotal()
	waitFor(t, time.Minute, "instance b to copy while a is frozen", func() bool {
		n := me.positionsTotal()
		if before < 0 {
			before = n
			return false
		}
		return n > before
	})
	require.False(t, a.exited(), "the frozen instance exited")
	if d := 8*time.Second - time.Since(frozen); d > 0 {
		time.Sleep(d) // past the session timeout whatever b did
	}
	woken()
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGCONT))
	t.Logf("instance a woken after %s", time.Since(frozen).Round(time.Millisecond))
	time.Sleep(5 * time.Second) // both copy while records arrive
	stop()
	me.waitMirrored(time.Minute, nil)
	b.stop(t)
	// The zombie may stop by itself (fenced) or on SIGTERM; either is
	// fine, what it committed is what counts.
	if !a.exited() {
		require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	}
	ps := a.wait(t, time.Minute)
	t.Logf("instance a: %s; its output after it woke:\n%s", ps, tail(a.out.String(), 12))
	me.finalCheck(w)
}

// holdFirstHeartbeatAfter makes a zombie hear late that it was expelled:
// on kfake it holds, for d, the first source group heartbeat of the group's
// only member now (the instance about to be frozen) that arrives after
// woken is called. A frozen process learns of its expulsion from that
// heartbeat, which on waking races with the commit of the transaction it
// holds (within milliseconds); the hold lets the commit win, as a slow link
// to the source cluster would. On real clusters it does nothing: the race
// is left to chance.
func (me *mirrorEnv) holdFirstHeartbeatAfter(d time.Duration) (woken func()) {
	t := me.t
	t.Helper()
	var awake, held atomic.Bool
	if me.srcFake == nil {
		return func() {}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	groups, err := kadm.NewClient(me.srcCl).DescribeGroups(ctx, me.name)
	require.NoError(t, err)
	g := groups[me.name]
	require.NoError(t, g.Err)
	require.Len(t, g.Members, 1, "the group should have the one instance about to be frozen")
	member := g.Members[0].MemberID
	me.srcFake.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		me.srcFake.KeepControl()
		if !awake.Load() || req.(*kmsg.HeartbeatRequest).MemberID != member || !held.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		me.srcFake.SleepControl(func() { <-time.After(d) })
		return nil, nil, false
	})
	return func() { awake.Store(true) }
}

// TestMirrorTargetBrokerKilled SIGKILLs the target's broker (real
// clusters only: the one-node target of integration/kafka/test.sh) while
// the mirror copies, and restarts it 5 s later. The mirror may stop while
// its target is gone (a commit whose outcome is unknown must not be
// retried); the test restarts it as a supervisor would. The target ends
// equal to the source.
func TestMirrorTargetBrokerKilled(t *testing.T) {
	dir := os.Getenv("KAFKA_TARGET_DIR")
	if dir == "" || os.Getenv("KAFKA_TARGET_BROKERS") == "" || os.Getenv("KAFKA_BROKERS") == "" {
		t.Skip("needs real source and target clusters, the target started by cluster.sh: set KAFKA_BROKERS, KAFKA_TARGET_BROKERS and KAFKA_TARGET_DIR (make test-mirror-kafka)")
	}
	c, err := cluster.Open(dir)
	require.NoError(t, err)
	require.ElementsMatch(t, c.Brokers(), strings.Split(os.Getenv("KAFKA_TARGET_BROKERS"), ","),
		"KAFKA_TARGET_BROKERS and the cluster.sh run directory KAFKA_TARGET_DIR disagree")
	me := newMirrorEnv(t, false)
	w := me.newWriter("w")
	stop := w.background()
	m := me.spawn("a", spawnOpts{})
	me.waitCopying(me.waitCopying(0, time.Minute), time.Minute)

	node := c.Nodes()[0]
	restartOnCleanup(t, c, node)
	require.NoError(t, c.Kill(node))
	t.Logf("killed target node %d", node)
	time.Sleep(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, c.Start(ctx, node))
	t.Logf("restarted target node %d", node)

	restarts := 0
	supervise := func() {
		if m.exited() {
			restarts++
			t.Logf("mirror exited (%s), restarting it; its output:\n%s", m.cmd.ProcessState, tail(m.out.String(), 10))
			m = me.spawn("a", spawnOpts{})
		}
	}
	waitFor(t, 2*time.Minute, "the mirror to copy after the restart", func() bool {
		supervise()
		return me.positionsTotal() > 0
	})
	before := me.positionsTotal()
	waitFor(t, 2*time.Minute, "the mirror to copy new records", func() bool {
		supervise()
		return me.positionsTotal() > before
	})
	stop()
	me.waitMirrored(2*time.Minute, supervise)
	m.stop(t)
	t.Logf("mirror restarts after the broker's: %d", restarts)
	me.finalCheck(w)
}

// TestMirrorProduceHeldPastTimeout holds one transactional produce request
// to the target (kfake control, so always on kfake) for twice the mirror's
// transaction timeout, then lets the broker answer it: the window in which
// mirrors that acknowledge before their sends finished lose records
// ("Expiring N record(s) ... since batch creation"), only made short by a
// 2 s transaction timeout. The transaction must not commit without those
// records: it aborts (on the broker, by its timeout, and in the mirror,
// whose flush is bounded by it) and the records are copied again, by the
// same process or by a restart. Nothing lost, nothing duplicated.
func TestMirrorProduceHeldPastTimeout(t *testing.T) {
	t.Parallel()
	me := newMirrorEnv(t, true)
	const txnTimeout = 2 * time.Second
	hold := 2*txnTimeout + time.Second
	var seen, held atomic.Int64
	me.tgtFake.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		me.tgtFake.KeepControl()
		if req.(*kmsg.ProduceRequest).TransactionID == nil || seen.Add(1) != 5 {
			return nil, nil, false
		}
		held.Add(1)
		me.tgtFake.SleepControl(func() { <-time.After(hold) })
		return nil, nil, false
	})
	w := me.newWriter("w")
	stop := w.background()
	args := spawnOpts{args: []string{"--transaction-timeout", txnTimeout.String()}}
	m := me.spawn("a", args)
	restarts := 0
	supervise := func() {
		if m.exited() {
			restarts++
			t.Logf("mirror exited (%s), restarting it; its output:\n%s", m.cmd.ProcessState, tail(m.out.String(), 10))
			m = me.spawn("a", args)
		}
	}
	waitFor(t, time.Minute, "a produce request to hold", func() bool { supervise(); return held.Load() > 0 })
	holdEnds := time.Now().Add(hold)
	waitFor(t, hold+time.Minute, "copies after the held request was answered", func() bool {
		supervise()
		return time.Now().After(holdEnds) && me.positionsTotal() > 0
	})
	before := me.positionsTotal()
	waitFor(t, time.Minute, "the mirror to copy new records", func() bool { supervise(); return me.positionsTotal() > before })
	stop()
	me.waitMirrored(time.Minute, supervise)
	m.stop(t)
	t.Logf("held %d produce request(s) for %s; mirror restarts: %d", held.Load(), hold, restarts)
	me.finalCheck(w)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
