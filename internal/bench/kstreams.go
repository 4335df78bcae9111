package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/exactly-stream/exactly/processor"
)

// PeerKStreams names the Kafka Streams peer (Config.Peer): the order
// application of examples/orders written for Kafka Streams with
// processing.guarantee=exactly_once_v2, in bench/kstreams.
const PeerKStreams = "kstreams"

// DefaultPeerJar is where `make kstreams-build` (mvn package in
// bench/kstreams) leaves the peer's runnable jar, relative to the
// repository root.
const DefaultPeerJar = "bench/kstreams/target/exactly-kstreams-peer.jar"

// Peer modes: how the two sides' transactions are sized.
const (
	// PeerModeDefaults runs each side at its defaults: exactly's
	// transaction ends at the commit interval or at the processor's default
	// MaxRecordsPerTxn (1000), whichever comes first; Kafka Streams'
	// transaction spans the commit interval.
	PeerModeDefaults = "defaults"
	// PeerModeEqual caps both at Config.PeerTxnSize records: exactly by
	// MaxRecordsPerTxn, Kafka Streams by requesting a commit
	// (ProcessorContext.commit) every PeerTxnSize records of a task.
	PeerModeEqual = "equal"
)

// processorDefaultTxnSize is processor.MaxRecordsPerTxn's default, the
// transaction size of exactly at its defaults. It was 1000 here after the
// processor's default became 10000, so "defaults" ran exactly at a tenth
// of its default transaction size.
const processorDefaultTxnSize = processor.DefaultMaxRecordsPerTxn

// peerPollInterval is how often a Kafka Streams run polls its group's
// committed offsets: the resolution of its finish line.
const peerPollInterval = 20 * time.Millisecond

// peerStopTimeout bounds a Kafka Streams process's clean shutdown after
// SIGTERM before it is killed.
const peerStopTimeout = 30 * time.Second

// kstreamsSpec is one Kafka Streams run.
type kstreamsSpec struct {
	app         app
	interval    time.Duration
	threads     int
	commitEvery int // 0: commit at the interval only
	stateDir    string
}

// args returns the peer's command line (bench/kstreams OrdersApp).
func (r *runner) kstreamsArgs(s kstreamsSpec) []string {
	args := []string{
		"-jar", r.cfg.PeerJar,
		"--brokers", strings.Join(r.cluster.brokers, ","),
		"--application-id", s.app.group,
		"--orders", s.app.topics.Orders,
		"--events", s.app.topics.Events,
		"--dlq", s.app.topics.DLQ,
		"--commit-interval-ms", strconv.FormatInt(s.interval.Milliseconds(), 10),
		"--threads", strconv.Itoa(s.threads),
		"--state-dir", s.stateDir,
	}
	if s.commitEvery > 0 {
		args = append(args, "--commit-every", strconv.Itoa(s.commitEvery))
	}
	if r.cfg.Replication > 0 {
		args = append(args, "--replication-factor", strconv.Itoa(int(r.cfg.Replication)))
	}
	return append([]string{"-Xms256m", "-Xmx1g"}, args...)
}

// kstreamsTopics names a Kafka Streams run's topics: the outputs and the
// changelogs Kafka Streams creates (<application.id>-<store>-changelog).
func kstreamsTopics(a app) []string {
	return []string{a.topics.Events, a.topics.DLQ, a.group + "-customers-changelog", a.group + "-order-ids-changelog"}
}

// kstreams measures the Kafka Streams peer over the input: it starts the
// peer's JVM and counts the input records its group committed, polling the
// committed offsets, until all of them are. The time runs from the JVM's
// start, as exactly's runs from the processors' construction.
func (r *runner) kstreams(ctx context.Context, name string, interval time.Duration, threads, commitEvery int) (Measurement, error) {
	a := newApp(r.cfg.TopicPrefix+name, r.input)
	defer r.cluster.cleanup(ctx, kstreamsTopics(a), a.group)
	// The outputs; Kafka Streams creates its changelogs itself.
	for _, t := range []string{a.topics.Events, a.topics.DLQ} {
		if err := r.cluster.createTopic(ctx, t, r.cfg.Partitions, false); err != nil {
			return Measurement{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	dir, err := os.MkdirTemp(r.cfg.Dir, "exactly-bench-kstreams-")
	if err != nil {
		return Measurement{}, err
	}
	defer os.RemoveAll(dir)
	spec := kstreamsSpec{app: a, interval: interval, threads: threads, commitEvery: commitEvery, stateDir: filepath.Join(dir, "state")}
	m, err := measure(ctx, r.cfg.RunTimeout, r.inputCount, func(ctx context.Context, fl *finishLine) (txnCounts, error) {
		return txnCounts{}, r.runKStreams(ctx, spec, filepath.Join(dir, "peer.log"), fl)
	})
	if err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	r.cfg.progressf("  %-32s %10s records/s  (%d records in %s, first commit after %s)",
		name, thousands(m.RecordsPerSec), m.Records, round(m.Elapsed), round(m.FirstCommit))
	return m, nil
}

// runKStreams runs the peer until ctx is cancelled, reporting newly
// committed input records to fl; it stops the JVM with SIGTERM (a clean
// close) and waits for it. A peer that exits by itself has failed.
func (r *runner) runKStreams(ctx context.Context, s kstreamsSpec, logPath string, fl *finishLine) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("java", r.kstreamsArgs(s)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the Kafka Streams peer: %w", err)
	}
	var (
		wg      sync.WaitGroup
		waitErr error
		exited  = make(chan struct{})
	)
	wg.Go(func() {
		defer close(exited)
		waitErr = cmd.Wait()
	})
	defer wg.Wait()
	r.pollCommitted(ctx, s.app, fl, exited)
	select {
	case <-exited:
		return fmt.Errorf("the Kafka Streams peer exited early (%w); its log ends:\n%s", waitErr, logTail(logPath))
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(peerStopTimeout):
		_ = cmd.Process.Kill()
	}
	return nil
}

// pollCommitted reports the group's newly committed input records to fl
// until ctx is done or the process exits.
func (r *runner) pollCommitted(ctx context.Context, a app, fl *finishLine, exited <-chan struct{}) {
	var seen int64
	t := time.NewTicker(peerPollInterval)
	defer t.Stop()
	for {
		n, err := r.cluster.committedRecords(ctx, a.group, a.topics.Orders)
		if err == nil && n > seen {
			fl.add(n - seen)
			seen = n
		}
		select {
		case <-ctx.Done():
			return
		case <-exited:
			return
		case <-t.C:
		}
	}
}

// logTail returns the peer's log lines that say what went wrong (its
// first errors and exceptions) and its last lines, for an error.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var out []string
	for _, l := range lines {
		if len(out) < 10 && (strings.Contains(l, " ERROR ") || strings.Contains(l, "Exception")) {
			out = append(out, l)
		}
	}
	out = append(out, "...")
	return strings.Join(append(out, lines[max(0, len(lines)-5):]...), "\n")
}

// errNoPeer says why the peer cannot run.
var errNoPeer = errors.New("the Kafka Streams peer needs java on PATH and its jar (make kstreams-build)")
