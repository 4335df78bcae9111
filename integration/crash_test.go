package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/internal/crashpoint"
)

// crashBinary is the exactly command built with the exactly_crashpoints tag
// (and the race detector), once, for the tests that make a process kill
// itself at a named point. It sits next to binary, whose directory TestMain
// removes.
var crashBinary struct {
	once sync.Once
	path string
	err  error
}

func crashpointBinary(t testing.TB) string {
	t.Helper()
	crashBinary.once.Do(func() {
		path := filepath.Join(filepath.Dir(binary), "exactly-crashpoints")
		build := exec.Command("go", "build", "-race", "-tags", "exactly_crashpoints", "-o", path, "../cmd/exactly")
		if out, err := build.CombinedOutput(); err != nil {
			crashBinary.err = fmt.Errorf("building the crash-point binary: %w\n%s", err, out)
			return
		}
		crashBinary.path = path
	})
	require.NoError(t, crashBinary.err)
	return crashBinary.path
}

// crashAt is the environment that makes a crash-point binary SIGKILL itself
// the n-th time it reaches point.
func crashAt(point string, n int) []string {
	return []string{fmt.Sprintf("EXACTLY_CRASH_AT=%s:%d", point, n)}
}

// child is one `exactly run` process of the order service started by a
// test. Its stderr is kept (and copied to the test's stderr when
// EXACTLY_TEST_LOG is set, or into the test log when the test fails).
type child struct {
	id, dir string
	cmd     *exec.Cmd
	out     *logBuffer
	done    chan struct{} // closed once the process exited and was reaped
}

// startChild starts bin with args as a child process of the test, with
// environment env (nil: this process's), keeping its output (shown when
// the test fails, and on stderr with EXACTLY_TEST_LOG set); the test's
// cleanup kills it (a SIGSTOPped one too) and reaps it. what names it in
// that output.
func startChild(t *testing.T, wg *sync.WaitGroup, what, id, bin string, args, env []string) *child {
	t.Helper()
	c := &child{id: id, out: &logBuffer{}, done: make(chan struct{})}
	if os.Getenv("EXACTLY_TEST_LOG") != "" {
		c.out.tee = os.Stderr
	}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = env
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	require.NoError(t, c.cmd.Start())
	wg.Go(func() {
		_ = c.cmd.Wait()
		close(c.done)
	})
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill() // a SIGSTOPped process dies too
		<-c.done
		if t.Failed() {
			t.Logf("output of %s (pid %d):\n%s", what, c.cmd.Process.Pid, c.out.String())
		}
	})
	return c
}

// freeze SIGSTOPs c and returns once every thread of it is stopped.
// kill(2) returns before a multi-threaded process has stopped: a thread
// can run on for a moment (and, say, begin a database transaction), so a
// test that inspects what the paused process holds must wait for this.
func (c *child) freeze(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGSTOP))
	dir := fmt.Sprintf("/proc/%d/task", c.cmd.Process.Pid)
	require.Eventually(t, func() bool {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return false
		}
		for _, task := range tasks {
			stat, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
			if err != nil {
				return false
			}
			// The state follows the command name, which is in parentheses.
			i := bytes.LastIndexByte(stat, ')')
			if i < 0 || i+2 >= len(stat) || (stat[i+2] != 'T' && stat[i+2] != 't') {
				return false
			}
		}
		return len(tasks) > 0
	}, 10*time.Second, time.Millisecond, "%s did not stop", c.id)
}

// orBinary returns bin, or the plain race binary when bin is "".
func orBinary(bin string) string {
	if bin == "" {
		return binary
	}
	return bin
}

// spawnOpts adjusts a child: bin "" is the plain race binary; env is added
// to the test's environment; args come after the defaults of runProcess and
// so override them.
type spawnOpts struct {
	bin  string
	env  []string
	args []string
}

// spawn starts `exactly run --service order` with instance id and state
// directory dir, with the same defaults as runProcess, and JSON logs at info
// level so that tests can read what it did (restores, aborts).
func (e *env) spawn(id, dir string, o spawnOpts) *child {
	e.t.Helper()
	args := []string{"run", "--service", "order", "--brokers", strings.Join(e.brokers, ","),
		"--instance-id", id, "--state-dir", dir, "--topic-prefix", e.prefix,
		"--commit-interval", "200ms", "--max-records", "100",
		"--session-timeout", "6s", "--transaction-timeout", "5s",
		"--log-level", "info", "--log-format", "json"}
	c := startChild(e.t, &e.wg, "instance "+id, id, orBinary(o.bin), append(args, o.args...), e.childEnv(o.env...))
	c.dir = dir
	return c
}

// exited reports whether the process ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit by itself and returns how it ended.
func (c *child) wait(t testing.TB, timeout time.Duration) *os.ProcessState {
	t.Helper()
	select {
	case <-c.done:
		return c.cmd.ProcessState
	case <-time.After(timeout):
		t.Fatalf("instance %s did not exit within %s", c.id, timeout)
		return nil
	}
}

// waitCrash waits for the process to kill itself at point.
func (c *child) waitCrash(t testing.TB, point string, timeout time.Duration) {
	t.Helper()
	ps := c.wait(t, timeout)
	ws, _ := ps.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "instance %s: %s, want killed at crash point %s", c.id, ps, point)
	require.Contains(t, c.out.String(), "crash point "+point+" reached", "instance %s was killed, but not at %s", c.id, point)
}

// stop ends the process cleanly (SIGTERM) and requires exit status 0.
func (c *child) stop(t testing.TB) {
	t.Helper()
	if !c.exited() {
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	}
	ps := c.wait(t, time.Minute)
	require.Equal(t, 0, ps.ExitCode(), "instance %s: %s", c.id, ps)
}

// stopOrCrash is stop for a process with a crash point armed: the stop
// itself may reach the point (the revoke callback runs as it leaves the
// group), and then the process dies there, which is as safe as any crash.
func (c *child) stopOrCrash(t testing.TB) {
	t.Helper()
	if !c.exited() {
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	}
	ps := c.wait(t, time.Minute)
	if ws, _ := ps.Sys().(syscall.WaitStatus); ws.Signaled() && ws.Signal() == syscall.SIGKILL && strings.Contains(c.out.String(), "crash point ") {
		return
	}
	require.Equal(t, 0, ps.ExitCode(), "instance %s: %s", c.id, ps)
}

// kill ends the process at once (SIGKILL), as a crash would.
func (c *child) kill(t testing.TB) {
	t.Helper()
	_ = c.cmd.Process.Kill()
	c.wait(t, time.Minute)
}

// logs returns the process's JSON log lines with message msg.
func (c *child) logs(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(c.out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// logBuffer collects a process's output; the process writes it from the
// goroutine exec runs for a non-file writer while tests read it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	tee *os.File
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tee != nil {
		_, _ = b.tee.Write(p)
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// crashScenarios has one scenario per crash point in crashpoint.All;
// TestCrashPoints fails for a point without one, so a new crash point needs
// a test before it can be merged.
var crashScenarios = map[string]func(t *testing.T, point string){
	crashpoint.AfterPoll:   crashMidTransaction,
	crashpoint.MidProduce:  crashMidTransaction,
	crashpoint.BeforeEnd:   crashMidTransaction,
	crashpoint.AfterCommit: crashMidTransaction,
	crashpoint.MidRestore:  crashMidRestore,
	crashpoint.InAssigned:  crashInRebalance,
	crashpoint.InRevoked:   crashInRebalance,
}

// TestCrashPoints runs the real binary, built with the crash points
// compiled in, and makes it SIGKILL itself at each named point in turn;
// then an instance with the same instance id restarts on the same state
// directory and finishes the input. E1-E5 hold every time, E4 on the
// crashed instance's own directory.
func TestCrashPoints(t *testing.T) {
	crashpointBinary(t) // build once, before the subtests run in parallel
	for _, point := range crashpoint.All {
		scenario, ok := crashScenarios[point]
		if !ok {
			t.Errorf("crash point %s has no crash scenario: add one to crashScenarios", point)
			continue
		}
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			scenario(t, point)
		})
	}
}

// crashMidTransaction kills the instance at point in its third transaction,
// with earlier transactions committed and input left, then restarts it on
// its state directory while more input arrives. The restarted instance
// fences its predecessor (the same transactional id), so an open
// transaction is aborted at once; after after-commit its local checkpoint
// lags the committed changelog, and its restore closes the lag.
func crashMidTransaction(t *testing.T, point string) {
	e := newEnv(t)
	bin := crashpointBinary(t)
	e.produce(1500, seedFor(point), 0)
	dir := filepath.Join(e.root, "a")
	c := e.spawn("a", dir, spawnOpts{bin: bin, env: crashAt(point, 3)})
	c.waitCrash(t, point, 2*time.Minute)

	c2 := e.spawn("a", dir, spawnOpts{bin: bin})
	e.produce(500, seedFor(point)+1, 0)
	e.waitVerified(false, 2*time.Minute)
	c2.stop(t)
	if point == crashpoint.AfterCommit {
		// The crash lost the apply of a committed transaction: the
		// restart must have restored its state writes from the changelog.
		require.Positive(t, restoredRecords(c2), "after-commit: the restart restored nothing, yet a committed transaction was never applied locally")
	}
	e.finalCheck(false, dir)
}

// crashMidRestore processes an input, then starts the instance on an empty
// state directory with a restore batch of 50 records, so that restoring a
// changelog partition takes several batches: it crashes at the third
// flushed batch (store partitions restore one after the other, so one or
// two are complete by then, and one is half done). Restarted on that half-restored
// directory, it goes on from whatever prefix of the restore reached disk
// (batches are written without fsync, so the prefix may be shorter than
// what was flushed: the checkpoint lags, it never leads), never wipes it,
// and processes new input that depends on the restored state.
func crashMidRestore(t *testing.T, point string) {
	e := newEnv(t)
	bin := crashpointBinary(t)
	e.produce(2000, seedFor(point), 0)
	first := e.spawn("a", filepath.Join(e.root, "first"), spawnOpts{bin: bin})
	e.waitVerified(false, 2*time.Minute)
	first.stop(t)

	dir := filepath.Join(e.root, "fresh")
	batch := []string{"--restore-batch", "50"}
	c := e.spawn("a", dir, spawnOpts{bin: bin, env: crashAt(point, 3), args: batch})
	c.waitCrash(t, point, 2*time.Minute)

	c2 := e.spawn("a", dir, spawnOpts{bin: bin, args: batch})
	e.produce(500, seedFor(point)+1, 0)
	e.waitVerified(false, 2*time.Minute)
	c2.stop(t)
	resumed := 0
	for _, r := range c2.logs("restored store partition") {
		require.Equal(t, false, r["wiped"], "a partial restore must be continued, not wiped: %v", r)
		if from, _ := r["from"].(float64); from > 0 {
			resumed++
		}
	}
	t.Logf("%d of %d partitions resumed their restore from a checkpoint the crashed restore left", resumed, partitions)
	e.finalCheck(false, dir)
}

// crashInRebalance runs one instance while orders arrive, then starts a
// second (in process): the group rebalances, and the first instance kills
// itself inside its revoke callback (in-revoked) or inside its second
// assignment callback (in-assigned: the first was its own join), with its
// transaction aborted or about to be. The second instance takes every
// partition once the dead member's session times out; the first restarts
// on its state directory and takes its share back.
func crashInRebalance(t *testing.T, point string) {
	e := newEnv(t)
	bin := crashpointBinary(t)
	produced := make(chan struct{})
	e.wg.Go(func() { defer close(produced); e.produce(3000, seedFor(point), 1000) })
	dir := filepath.Join(e.root, "a")
	n := 1
	if point == crashpoint.InAssigned {
		n = 2
	}
	c := e.spawn("a", dir, spawnOpts{bin: bin, env: crashAt(point, n)})
	e.waitCommitted(e.group("order"), 300)
	require.False(t, c.exited(), "instance a exited before the rebalance")
	e.start("order", "b", "b")
	c.waitCrash(t, point, 2*time.Minute)

	c2 := e.spawn("a", dir, spawnOpts{bin: bin})
	<-produced
	e.waitVerified(false, 2*time.Minute)
	c2.stop(t)
	e.finalCheck(false, dir)
}

// seedFor gives each scenario its own order ids.
func seedFor(point string) int64 {
	for i, p := range crashpoint.All {
		if p == point {
			return int64(100 + 10*i)
		}
	}
	return 99
}

// restoredRecords sums the changelog records a child's restores applied.
func restoredRecords(c *child) int64 {
	var n int64
	for _, r := range c.logs("restored store partition") {
		if v, ok := r["records"].(float64); ok {
			n += int64(v)
		}
	}
	return n
}
