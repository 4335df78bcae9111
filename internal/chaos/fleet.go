package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// instance is one `exactly run` child process and its identity. Its
// fields are owned by the chaos loop; done is closed by the goroutine that
// reads its output and reaps it.
type instance struct {
	id, dir string
	cmd     *exec.Cmd
	done    chan struct{}
	paused  bool
	// signalled is set when the loop killed or stopped it on purpose, so
	// that its exit is expected.
	signalled bool
	// lastErr is the last error line it logged (read after done).
	lastErr string
	// raceExit is set when a goroutine dump (SIGQUIT) shows the process
	// inside the race detector's exit (runtime.racefini): its work was
	// done and it was exiting (read after done).
	raceExit bool
	// text holds the lines it printed that are not JSON log lines (a
	// goroutine dump, a panic), and recent its last JSON log lines: what
	// a hung or failed instance's report shows (read after done).
	text   []string
	recent []string
	// resetting is set while it runs with --reset-state and has not yet
	// logged that the reset's offset records were written.
	resetting atomic.Bool
}

// Bounds of what an instance's output keeps for its report.
const (
	maxTextLines   = 20000
	maxRecentLines = 30
)

func (in *instance) exited() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// waitExit waits at most d for the process to exit.
func (in *instance) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-in.done:
		return true
	case <-t.C:
		return false
	}
}

// txnTimeout is the instances' transaction timeout. It stays the same for
// every incarnation of an instance id: kfake keeps the timeout a
// transactional id was first initialized with.
const txnTimeout = 5 * time.Second

// fleet starts instances and follows their logs into stats.
type fleet struct {
	cfg     *Config
	brokers string
	stats   *stats
	wg      sync.WaitGroup // one goroutine per process: read its output, reap it
	logMu   sync.Mutex     // serializes writes to cfg.InstanceLogs
	n       int            // instances ever created, for ids

	// Mirror mode: the target cluster, the mirror's name and the source
	// topics it copies.
	targetBrokers string
	mirrorName    string
	mirrorTopics  []string
}

// sessionTimeout is the instances' group session timeout.
const sessionTimeout = 6 * time.Second

// start runs an instance with id in dir, with further arguments extra
// (--reset-state). Its transaction size and commit interval are drawn by
// the caller so that instances differ.
func (f *fleet) start(id, dir string, maxRecords int, commitInterval time.Duration, extra ...string) (*instance, error) {
	cmd := f.command(id, dir, maxRecords, commitInterval, extra...)
	cmd.Stdout = io.Discard
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("starting instance %s: %w", id, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting instance %s: %w", id, err)
	}
	in := &instance{id: id, dir: dir, cmd: cmd, done: make(chan struct{})}
	in.resetting.Store(slices.Contains(extra, "--reset-state"))
	f.stats.add(func(s *Report) { s.Started++ })
	f.wg.Go(func() {
		in.lastErr = f.follow(in, out)
		_ = cmd.Wait()
		close(in.done)
	})
	return in, nil
}

// resetDoneMsg is what an instance logs once its --reset-state is done
// (package processor, seedOffsetRecords).
const resetDoneMsg = "state reset: done"

// envPrefix is the prefix of the exactly program's environment variables
// (package app: EXACTLY_<FLAG>).
const envPrefix = "EXACTLY_"

// instanceEnvPrefix is the prefix of the environment variables of the
// program the instances run: the examples' commands are programs of their
// own (package app derives the prefix from the program's name), and read
// REVENUE_<FLAG> and ENRICH_<FLAG>, not EXACTLY_<FLAG>.
func (f *fleet) instanceEnvPrefix() string {
	switch f.cfg.Mode {
	case ModeRevenue:
		return "REVENUE_"
	case ModeEnrich:
		return "ENRICH_"
	}
	return envPrefix
}

// command returns the command of an instance (see start). The connection
// settings go into its environment, never onto its command line: a
// password there shows in ps.
func (f *fleet) command(id, dir string, maxRecords int, commitInterval time.Duration, extra ...string) *exec.Cmd {
	service := []string{"--service", "order"}
	if f.cfg.Mode == ModeRevenue || f.cfg.Mode == ModeEnrich {
		service = nil // the example's command runs its one service
	}
	args := slices.Concat([]string{"run"}, service, []string{"--brokers", f.brokers,
		"--instance-id", id, "--state-dir", dir, "--topic-prefix", f.cfg.TopicPrefix,
		"--max-records", fmt.Sprint(maxRecords), "--commit-interval", commitInterval.String(),
		"--session-timeout", sessionTimeout.String(), "--transaction-timeout", txnTimeout.String(),
		"--log-level", "info", "--log-format", "json"}, extra)
	if f.cfg.TaskIdle != 0 {
		args = append(args, "--task-idle", f.cfg.TaskIdle.String())
	}
	if f.cfg.Loops > 1 {
		args = append(args, "--loops", fmt.Sprint(f.cfg.Loops))
	}
	if f.cfg.Mode == ModeMirror {
		// The mirror has no state directory, no transaction size and
		// no session timeout flag: on kfake the soak lowers the session
		// timeout of its JoinGroups (see run.capMirrorSession).
		args = []string{"mirror", "--source-brokers", f.brokers, "--target-brokers", f.targetBrokers,
			"--topics", strings.Join(f.mirrorTopics, ","), "--name", f.mirrorName, "--instance-id", id,
			"--commit-interval", commitInterval.String(), "--transaction-timeout", txnTimeout.String()}
	}
	cmd := exec.Command(f.cfg.Binary, args...)
	if f.cfg.Mode == ModeMirror {
		cmd.Env = f.cfg.TargetSecurity.Environ(f.cfg.Security.Environ(os.Environ(), envPrefix, "source-"), envPrefix, "target-")
	} else {
		cmd.Env = f.cfg.Security.Environ(os.Environ(), f.instanceEnvPrefix(), "")
	}
	return cmd
}

// follow reads an instance's log lines until it exits, counting what the
// report shows, and returns its last error line.
func (f *fleet) follow(in *instance, r io.Reader) string {
	var last string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f.cfg.InstanceLogs != nil {
			f.logMu.Lock()
			fmt.Fprintf(f.cfg.InstanceLogs, "[%s] %s\n", in.id, line)
			f.logMu.Unlock()
		}
		if strings.Contains(line, "runtime.racefini(") {
			in.raceExit = true
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			if len(in.text) < maxTextLines {
				in.text = append(in.text, line)
			}
			last = line // the command's final error, or a crash message
			f.stats.textLine(line)
			continue
		}
		if len(in.recent) == maxRecentLines {
			in.recent = append(in.recent[:0], in.recent[1:]...)
		}
		in.recent = append(in.recent, line)
		if m["msg"] == resetDoneMsg {
			in.resetting.Store(false)
		}
		if m["level"] == "ERROR" {
			last = fmt.Sprint(m["msg"], ": ", m["err"])
		}
		f.stats.logLine(m)
	}
	return last
}

// signal sends sig to a running instance.
func (in *instance) signal(sig syscall.Signal) {
	if !in.exited() {
		_ = in.cmd.Process.Signal(sig)
	}
}

// kafkaCode finds a Kafka error code ("INVALID_TXN_STATE: ...") in an
// error message.
var kafkaCode = regexp.MustCompile(`\b([A-Z][A-Z_]*_[A-Z_]*[A-Z]):`)

// shortCause reduces an abort cause to its kind: a Kafka error code, or
// the innermost message.
func shortCause(cause any) string {
	s, _ := cause.(string)
	if s == "" || s == "<nil>" {
		return "rebalance"
	}
	if m := kafkaCode.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}

// hangReport is what the report shows of an instance that did not stop:
// its last log lines, and the goroutines of its dump that run the
// project's code (kgo's and the runtime's own idle goroutines left out),
// at most maxLines lines of them. Call it after the instance exited.
func (in *instance) hangReport(maxLines int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  last log lines of %s:\n", in.id)
	for _, l := range in.recent {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	fmt.Fprintf(&b, "  goroutines of %s in exactly's code (SIGQUIT dump):\n", in.id)
	n := 0
	for _, g := range goroutines(in.text) {
		if !strings.Contains(g, "exactly-stream/exactly/") {
			continue
		}
		for _, l := range strings.Split(g, "\n") {
			if n == maxLines {
				b.WriteString("    ...\n")
				return b.String()
			}
			fmt.Fprintf(&b, "    %s\n", l)
			n++
		}
	}
	return b.String()
}

// goroutines splits a goroutine dump into its goroutines' stacks.
func goroutines(lines []string) []string {
	var out []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "goroutine "):
			flush()
			cur = append(cur, l)
		case l == "":
			flush()
		case cur != nil:
			cur = append(cur, l)
		}
	}
	flush()
	return out
}
