package integration

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/exactly-stream/exactly/examples/orders"
)

func TestOneInstance(t *testing.T) {
	e := newEnv(t)
	st := e.produce(3000, 1, 0)
	e.start("order", "a", "a")
	rep := e.waitVerified(false, 2*time.Minute)
	require.Equal(t, st.Valid, rep.Events)
	require.Equal(t, st.Malformed, rep.DLQ)
	require.Equal(t, st.Duplicates, rep.Duplicates)
	e.finalCheck(false)
}

// TestMembersJoinAndLeave runs three instances while orders arrive, then
// stops one, adds two and stops another: every rebalance aborts the open
// transactions and moves tasks, whose state is restored by their new owner.
func TestMembersJoinAndLeave(t *testing.T) {
	e := newEnv(t)
	a, b, _ := e.start("order", "a", "a"), e.start("order", "b", "b"), e.start("order", "c", "c")
	group := e.group("order")
	produced := make(chan struct{})
	e.wg.Go(func() { defer close(produced); e.produce(6000, 2, 3000) })
	e.waitCommitted(group, 1500)
	b.close(t)
	e.start("order", "d", "d")
	e.waitCommitted(group, 3500)
	e.start("order", "e", "e")
	a.close(t)
	<-produced
	e.waitVerified(false, 2*time.Minute)
	e.finalCheck(false)
}

// TestRestartRestoresFromCheckpoint restarts an instance on its own state
// directory: its restore reads only what follows its local checkpoint (the
// last commit markers), not the state records.
func TestRestartRestoresFromCheckpoint(t *testing.T) {
	e := newEnv(t)
	e.produce(2000, 3, 0)
	a := e.start("order", "a", "a")
	e.waitVerified(false, 2*time.Minute)
	a.close(t)

	e.produce(500, 4, 0)
	a2 := e.start("order", "a", "a")
	e.waitVerified(false, 2*time.Minute)
	rs := a2.restores()
	require.Len(t, rs, partitions*len(orders.OrderStores()), "one restore per store partition")
	for _, r := range rs {
		require.False(t, r.Wiped, "partition %d", r.Partition)
		require.Zero(t, r.Records, "partition %d restored state records despite its checkpoint", r.Partition)
	}
	e.finalCheck(false)
}

// TestFreshInstanceRestoresAll replaces an instance by one with an empty
// state directory: it restores every state record from the changelogs and
// goes on from there.
func TestFreshInstanceRestoresAll(t *testing.T) { freshInstanceRestoresAll(t, newEnv(t)) }

// freshInstanceRestoresAll is TestFreshInstanceRestoresAll on e.
func freshInstanceRestoresAll(t *testing.T, e *env) {
	e.produce(2000, 5, 0)
	a := e.start("order", "a", "a")
	first := e.waitVerified(false, 2*time.Minute)
	a.close(t)

	e.produce(500, 6, 0)
	b := e.start("order", "b", "b")
	e.waitVerified(false, 2*time.Minute)
	var restored int64
	for _, r := range b.restores() {
		restored += r.Records
	}
	// Two state writes per event, the customer and the order id;
	// compaction may only lower the count.
	writes := int64(len(orders.OrderStores()) * first.Events)
	require.Positive(t, restored)
	require.LessOrEqual(t, restored, writes)
	if !e.real {
		require.Equal(t, writes, restored, "kfake does not compact: every state write is restored")
	}
	e.finalCheck(false)
}

// TestTwoStagePipeline chains the order service and the payment service,
// each exactly-once, each its own group: a payment per order, attempt 1.
func TestTwoStagePipeline(t *testing.T) { twoStagePipeline(t, newEnv(t)) }

// twoStagePipeline is TestTwoStagePipeline on e.
func twoStagePipeline(t *testing.T, e *env) {
	e.start("order", "o1", "o1")
	e.start("order", "o2", "o2")
	e.start("payment", "p1", "p1")
	st := e.produce(4000, 7, 0)
	rep := e.waitVerified(true, 2*time.Minute)
	require.Equal(t, st.Valid, rep.Payments)
	e.finalCheck(true)
}

// TestAbandonedMidTransaction kills an instance's process (SIGKILL: no
// abort, no leave) while it processes, most likely with a transaction open,
// and replaces it. Replaced by the same instance id, the new process fences
// its predecessor and aborts its transaction at once; replaced by another
// id, the group waits out the session timeout and the zombie transaction
// is aborted at the transaction timeout. Either way nothing is lost or
// duplicated.
func TestAbandonedMidTransaction(t *testing.T) {
	for _, tc := range []struct {
		name, replacement string
	}{
		{"same instance id", "z"},
		{"other instance id", "y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			produced := make(chan struct{})
			e.wg.Go(func() { defer close(produced); e.produce(4000, 8, 2000) })
			dir := e.root + "/z"
			cmd := e.runProcess("z", dir, nil)
			e.waitCommitted(e.group("order"), 300)
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			_ = cmd.Wait()

			var extra []string
			if tc.replacement == "z" {
				e.start("order", "z", "z") // the same state directory
			} else {
				extra = []string{dir}
				e.start("order", tc.replacement, tc.replacement)
			}
			<-produced
			e.waitVerified(false, 2*time.Minute)
			e.finalCheck(false, extra...)
		})
	}
}

// runProcess starts `exactly run` for the order service as a child process.
func (e *env) runProcess(id, dir string, stderr io.Writer) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(binary, "run", "--service", "order", "--brokers", strings.Join(e.brokers, ","),
		"--instance-id", id, "--state-dir", dir, "--topic-prefix", e.prefix,
		"--commit-interval", "200ms", "--max-records", "100",
		"--session-timeout", "6s", "--transaction-timeout", "5s", "--log-level", "warn")
	if stderr == nil {
		stderr = os.Stderr
	}
	cmd.Env = e.childEnv()
	cmd.Stdout, cmd.Stderr = os.Stderr, stderr
	require.NoError(e.t, cmd.Start())
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// waitCommitted waits until group committed at least n input offsets. It
// asks through a new client each time: a client that cached a coordinator
// on a broker that died keeps dialing it.
func (e *env) waitCommitted(group string, n int64) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for {
		sum, err := e.committed(group)
		if err == nil && sum >= n {
			return
		}
		last = err
		require.True(e.t, time.Now().Before(deadline), "group %s committed %d < %d input offsets (last error: %v)", group, sum, n, last)
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) committed(group string) (int64, error) {
	cl, err := e.client()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += max(o.At, 0) })
	return sum, nil
}

// TestSignals sends SIGTERM to the real binary while it processes: it ends
// its transaction, leaves the group and exits 0. Two signals in a row make
// it exit at once (130), as a crash would. Either way a successor with the
// same instance id finishes the input with nothing lost or duplicated.
func TestSignals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		signals int
		code    int
	}{
		{"one SIGTERM: clean shutdown", 1, 0},
		{"two SIGTERMs: immediate exit", 2, 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			produced := make(chan struct{})
			e.wg.Go(func() { defer close(produced); e.produce(3000, 9, 1500) })
			dir := e.root + "/s"
			w := &watcher{w: os.Stderr, want: "shutting down cleanly", seen: make(chan struct{})}
			cmd := e.runProcess("s", dir, w)
			e.waitCommitted(e.group("order"), 300)
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			if tc.signals == 2 {
				// Signals of one kind do not queue: send the second once
				// the first was handled.
				select {
				case <-w.seen:
				case <-time.After(10 * time.Second):
					t.Fatal("the first signal was not acknowledged")
				}
				require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			}
			done := make(chan error, 1)
			e.wg.Go(func() { done <- cmd.Wait() })
			select {
			case err := <-done:
				require.Equal(t, tc.code, cmd.ProcessState.ExitCode(), "exit error: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("the process did not exit")
			}
			<-produced
			e.start("order", "s", "s")
			e.waitVerified(false, 2*time.Minute)
			e.finalCheck(false)
		})
	}
}

// watcher passes output on and closes seen once want was written.
type watcher struct {
	w    io.Writer
	want string
	buf  strings.Builder
	seen chan struct{}
	once sync.Once
}

func (w *watcher) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return w.w.Write(p)
}
