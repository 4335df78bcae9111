package processor

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/topology"
)

// The kill tests run instances as processes of this test binary (TestMain
// runs the helper when helperEnv is set), so that one can be SIGKILLed:
// no deferred call, no End, no leave; its open transaction stays open
// until its successor fences it.
const (
	helperEnv     = "EXACTLY_PROCESSOR_HELPER" // topology: "count" or "ticks"
	helperBrokers = "EXACTLY_PROCESSOR_HELPER_BROKERS"
	helperDir     = "EXACTLY_PROCESSOR_HELPER_DIR"
	helperID      = "EXACTLY_PROCESSOR_HELPER_ID"
	// helperCrashTick makes the "ticks" helper SIGKILL itself, once per
	// state directory, at the end of the first transaction in which a
	// punctuator fired this tick: everything produced, nothing committed.
	helperCrashTick = "EXACTLY_PROCESSOR_HELPER_CRASH_TICK"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := runHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	dir := os.Getenv(helperDir)
	var topo *topology.Topology
	var err error
	switch os.Getenv(helperEnv) {
	case "count":
		topo, err = newRepartitionedCount()
	case "ticks":
		topo, err = newTickTopology(100*time.Millisecond, crashAtTick(dir))
	default:
		err = fmt.Errorf("unknown helper topology %q", os.Getenv(helperEnv))
	}
	if err != nil {
		return err
	}
	// The "ticks" instance restarts alone: as a static member it takes
	// its partitions back at once instead of waiting out its dead
	// predecessor's session.
	static := StaticMembership(os.Getenv(helperEnv) == "ticks")
	p, err := New(topo, static, Brokers(os.Getenv(helperBrokers)), Group("app"), InstanceID(os.Getenv(helperID)), StateDir(dir),
		CommitInterval(50*time.Millisecond), MaxRecordsPerTxn(50), DeadLetterTopic("dlq"),
		KgoOpts(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond), kgo.RebalanceTimeout(8*time.Second)),
		WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// crashAtTick returns the punctuator hook of the "ticks" helper: the first
// time (per state directory: a marker file) tick helperCrashTick fires, it
// arms testHookBeforeEnd to SIGKILL the process before that transaction
// ends.
func crashAtTick(dir string) func(int32, int64) {
	at, err := strconv.ParseInt(os.Getenv(helperCrashTick), 10, 64)
	if err != nil {
		return nil
	}
	var armed sync.Once
	return func(_ int32, tick int64) {
		if tick != at {
			return
		}
		f, err := os.OpenFile(filepath.Join(dir, "crashed"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return // crashed here before: run on
		}
		_ = f.Close()
		armed.Do(func() {
			testHookBeforeEnd = func() {
				fmt.Fprintln(os.Stderr, "helper: SIGKILL before End of the transaction that fired tick", at)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		})
	}
}

// helper is one instance process.
type helper struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func spawnHelper(t *testing.T, topo string, brokers []string, dir, id string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+topo, helperBrokers+"="+brokers[0], helperDir+"="+dir, helperID+"="+id)
	cmd.Env = append(cmd.Env, env...)
	h := &helper{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = h.out, h.out
	require.NoError(t, cmd.Start())
	go func() { _ = cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		h.stop(t)
		if t.Failed() {
			t.Logf("instance %s output:\n%s", id, tail(h.out.String(), 4000))
		}
	})
	return h
}

// stop asks the instance to stop (SIGTERM) and waits for it.
func (h *helper) stop(t *testing.T) {
	t.Helper()
	select {
	case <-h.done:
		return
	default:
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
		t.Errorf("instance did not stop within 30s")
	}
}

func (h *helper) kill() {
	_ = h.cmd.Process.Kill()
	<-h.done
}

// killed reports whether the instance died of SIGKILL.
func (h *helper) killed() bool {
	select {
	case <-h.done:
	default:
		return false
	}
	ws, ok := h.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// TestRepartitionedCountSurvivesAKill counts values re-keyed through a
// repartition topic on three instance processes, SIGKILLs one mid-stream
// and restarts it on its state directory: every value's count runs 1..N
// exactly once (no lost or repeated input, repartition record or output),
// and the repartition topic is created with the input's partition count
// and purged of what was committed.
func TestRepartitionedCountSurvivesAKill(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	const total, values = 1500, 7
	produce := func(from, to int) {
		for i := from; i < to; i += 50 {
			var recs []*kgo.Record
			for j := i; j < min(i+50, to); j++ {
				recs = append(recs, &kgo.Record{Topic: "in", Key: []byte(strconv.Itoa(j)), Value: []byte("v" + strconv.Itoa(j%values))})
			}
			require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
			time.Sleep(10 * time.Millisecond)
		}
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var hs []*helper
	for i, id := range []string{"a", "b", "c"} {
		hs = append(hs, spawnHelper(t, "count", brokers, dirs[i], id))
	}
	produce(0, total/3)
	adm := kadm.NewClient(cl)
	outputs := func() int {
		// The instances create out: until then there is nothing to read.
		if d, err := adm.ListTopics(context.Background(), "out"); err != nil || d["out"].Err != nil || len(d["out"].Partitions) == 0 {
			return 0
		}
		return len(readAll(t, brokers, "out"))
	}
	waitFor(t, 60*time.Second, "some outputs", func() bool { return outputs() > 0 })
	hs[1].kill()
	produce(total/3, 2*total/3)
	hs[1] = spawnHelper(t, "count", brokers, dirs[1], "b")
	produce(2*total/3, total)
	waitFor(t, 120*time.Second, "every input counted", func() bool { return outputs() >= total })

	perValue := make(map[string]int)
	for i := range total {
		perValue["v"+strconv.Itoa(i%values)]++
	}
	checkCounts(t, readAll(t, brokers, "out"), values, perValue)

	const topic = "app-byval-repartition"
	requireCoPartitioned(t, adm, "in", topic)
	details, err := adm.ListTopics(context.Background(), topic)
	require.NoError(t, err)
	require.Len(t, details[topic].Partitions, 3)
	waitFor(t, 30*time.Second, "repartition topic purged", func() bool {
		starts, err := adm.ListStartOffsets(context.Background(), topic)
		if err != nil {
			return false
		}
		purged := 0
		starts.Each(func(o kadm.ListedOffset) {
			if o.Err == nil && o.Offset > 0 {
				purged++
			}
		})
		return purged == 3
	})
}

// TestPunctuationKilledBeforeCommitFiresAgain: an instance is SIGKILLed
// after a wall-clock punctuator fired tick 3 (its store write staged, its
// output produced into the open transaction) and before the transaction
// ended. Restarted, the punctuator fires again against the state before
// it: every partition's committed ticks run 1, 2, 3, ... with no gap and no
// repeat. Neither partition ever receives a record.
func TestPunctuationKilledBeforeCommitFiresAgain(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	brokers := c.ListenAddrs()
	dir := t.TempDir()
	h := spawnHelper(t, "ticks", brokers, dir, "a", helperCrashTick+"=3")
	select {
	case <-h.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the instance did not crash at tick 3")
	}
	require.True(t, h.killed(), "the instance died of SIGKILL")
	_, err := os.Stat(filepath.Join(dir, "crashed"))
	require.NoError(t, err)
	before := ticksOf(t, brokers)
	for part, ticks := range before {
		require.Less(t, len(ticks), 3, "partition %s: tick 3 of the killed transaction is not visible", part)
	}

	spawnHelper(t, "ticks", brokers, dir, "a", helperCrashTick+"=3")
	waitFor(t, 60*time.Second, "five ticks per partition", func() bool {
		got := ticksOf(t, brokers)
		return len(got["0"]) >= 5 && len(got["1"]) >= 5
	})
	for part, ticks := range ticksOf(t, brokers) {
		requireRun(t, ticks, "partition "+part)
	}
}

// requireCoPartitioned asserts every member of group app holds the same
// partitions of topics a and b: a task is a partition number.
func requireCoPartitioned(t *testing.T, adm *kadm.Client, a, b string) {
	t.Helper()
	groups, err := adm.DescribeGroups(context.Background(), "app")
	require.NoError(t, err)
	// Every member offers the task balancer first, so the group uses it.
	require.Equal(t, taskProtocol, groups["app"].Protocol)
	members := groups["app"].Members
	require.NotEmpty(t, members)
	for _, m := range members {
		ca, ok := m.Assigned.AsConsumer()
		require.True(t, ok)
		parts := map[string][]int32{}
		for _, tp := range ca.Topics {
			parts[tp.Topic] = tp.Partitions
		}
		require.ElementsMatch(t, parts[a], parts[b], "member %s holds %v of %s but %v of %s", m.ClientID, parts[a], a, parts[b], b)
	}
}
