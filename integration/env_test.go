package integration

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// binary is the exactly command built once by TestMain, for tests that
// need a process to kill.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "exactly-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "exactly")
	build := exec.Command("go", "build", "-race", "-o", binary, "../cmd/exactly")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the exactly binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const partitions = 4

// env is one test's cluster, topics and instances.
type env struct {
	t       *testing.T
	brokers []string
	prefix  string
	topics  orders.Topics
	real    bool
	admin   *kadm.Client
	root    string
	parts   int32 // of the orders and events topics

	// sec secures the env's connections on a cluster with SASL, TLS and
	// ACLs (secured_test.go); nil on a plaintext cluster.
	sec *security

	mu    sync.Mutex
	insts []*inst
	wg    sync.WaitGroup
}

// client returns a new client of the env's cluster, connected as the
// operator (a super user) when the cluster is secured. The caller closes
// it.
func (e *env) client() (*kgo.Client, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(e.brokers...)}
	if e.sec != nil {
		opts = append(opts, e.sec.admin...)
	}
	return kgo.NewClient(opts...)
}

// childEnv returns the environment of an instance's child process: the
// test's, plus on a secured cluster the application user's connection
// settings, which the binary reads from EXACTLY_TLS_* and EXACTLY_SASL_*.
func (e *env) childEnv(extra ...string) []string {
	env := os.Environ()
	if e.sec != nil {
		env = append(env, e.sec.appEnv...)
	}
	return append(env, extra...)
}

func newEnv(t *testing.T) *env { return newEnvParts(t, partitions) }

// newEnvParts is newEnv with parts partitions of the orders and events
// topics.
func newEnvParts(t *testing.T, parts int32) *env {
	e := &env{t: t, root: t.TempDir(), parts: parts}
	if bs := os.Getenv("KAFKA_BROKERS"); bs != "" {
		e.brokers, e.real = strings.Split(bs, ","), true
		e.prefix = fmt.Sprintf("it-%s-%d-", regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-"), rand.IntN(1e6))
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(3))
		require.NoError(t, err)
		t.Cleanup(c.Close)
		e.brokers = c.ListenAddrs()
	}
	e.setup()
	return e
}

// setup creates the env's admin client and input and output topics.
func (e *env) setup() {
	t := e.t
	e.topics = orders.TopicsWithPrefix(e.prefix)
	cl, err := e.client()
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	e.admin = kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, topic := range []string{e.topics.Orders, e.topics.Events} {
		resp, err := e.admin.CreateTopic(ctx, e.parts, -1, nil, topic)
		require.NoError(t, err)
		require.NoError(t, resp.Err, "creating %s", topic)
	}
	t.Cleanup(e.stopAll)
}

func logger(t testing.TB, name string) *slog.Logger {
	if os.Getenv("EXACTLY_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name(), "instance", name)
}

// inst is one in-process instance.
type inst struct {
	name    string
	service string
	dir     string
	p       *processor.Processor
	stop    context.CancelFunc
	done    chan error
	mu      sync.Mutex
	restore []processor.RestoreInfo
}

// group returns the consumer group of a service in this env.
func (e *env) group(service string) string {
	if service == "payment" {
		return e.prefix + orders.DefaultPaymentGroup
	}
	return e.prefix + orders.DefaultOrderGroup
}

// start runs an instance of service ("order" or "payment") with instance id
// name and state directory dir (under the test's temp dir).
func (e *env) start(service, name, dir string, opts ...processor.Opt) *inst {
	e.t.Helper()
	topo, err := orders.OrderTopologyFor(e.topics)
	dlq := e.topics.DLQ
	if service == "payment" {
		topo, err = orders.PaymentTopologyFor(e.topics)
		dlq = e.topics.PaymentsDLQ
	}
	require.NoError(e.t, err)
	base := []processor.Opt{processor.Group(e.group(service)), processor.DeadLetterTopic(dlq)}
	return e.launch(topo, service, name, dir, append(base, opts...)...)
}

// launch runs topo in process as instance name of service, on state
// directory dir (under the test's temp dir), with the test settings
// (short commit interval and session timeout) before opts, which must name
// the group.
func (e *env) launch(topo *topology.Topology, service, name, dir string, opts ...processor.Opt) *inst {
	e.t.Helper()
	in := &inst{name: name, service: service, dir: filepath.Join(e.root, dir), done: make(chan error, 1)}
	base := []processor.Opt{
		processor.Brokers(e.brokers...), processor.InstanceID(name), processor.StateDir(in.dir),
		processor.CommitInterval(50 * time.Millisecond), processor.MaxRecordsPerTxn(200),
		processor.WithLogger(logger(e.t, name)),
		processor.KgoOpts(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond)),
		processor.WithHooks(processor.Hooks{OnRestore: func(r processor.RestoreInfo) {
			in.mu.Lock()
			defer in.mu.Unlock()
			in.restore = append(in.restore, r)
		}}),
	}
	if e.sec != nil {
		base = append(base, processor.KgoOpts(e.sec.app...))
	}
	var err error
	in.p, err = processor.New(topo, append(base, opts...)...)
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	in.stop = cancel
	e.wg.Go(func() { in.done <- in.p.Run(ctx) })
	e.mu.Lock()
	e.insts = append(e.insts, in)
	e.mu.Unlock()
	return in
}

// close stops the instance cleanly and requires Run to return nil.
func (in *inst) close(t testing.TB) {
	t.Helper()
	in.stop()
	select {
	case err := <-in.done:
		in.done <- err
		require.NoError(t, err, "instance %s", in.name)
	case <-time.After(60 * time.Second):
		t.Fatalf("instance %s did not stop", in.name)
	}
}

func (in *inst) restores() []processor.RestoreInfo {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]processor.RestoreInfo(nil), in.restore...)
}

func (e *env) stopAll() {
	e.mu.Lock()
	insts := e.insts
	e.mu.Unlock()
	for _, in := range insts {
		in.stop()
	}
	e.wg.Wait()
}

// failed fails the test if an instance stopped with an error.
func (e *env) failed() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, in := range e.insts {
		select {
		case err := <-in.done:
			in.done <- err
			require.NoError(e.t, err, "instance %s stopped", in.name)
		default:
		}
	}
}

// produce writes count orders with a seed unique to the call.
func (e *env) produce(count int, seed int64, rate int) orders.ProduceStats {
	e.t.Helper()
	cl, err := e.client()
	require.NoError(e.t, err)
	defer cl.Close()
	st, err := orders.Produce(context.Background(), cl, orders.ProduceConfig{
		Count: count, Customers: 50, Rate: rate, MalformedShare: 0.03, DuplicateShare: 0.03, Seed: seed, Topic: e.topics.Orders,
	})
	require.NoError(e.t, err)
	return st
}

// verify runs orders.Verify once. After a run (stableWait > 0) the
// changelogs are checked for hanging transactions too.
func (e *env) verify(payments bool, stableWait time.Duration) *orders.Report {
	e.t.Helper()
	cl, err := e.client()
	require.NoError(e.t, err)
	defer cl.Close()
	opts := e.topics.VerifyOptions(payments)
	opts.StableWait = stableWait
	if stableWait > 0 {
		for _, store := range orders.OrderStores() {
			opts.StableTopics = append(opts.StableTopics, processor.ChangelogTopic(e.group("order"), store))
		}
		if payments {
			opts.StableTopics = append(opts.StableTopics, processor.ChangelogTopic(e.group("payment"), orders.StorePayments))
		}
	}
	opts.IdleTimeout = 5 * time.Second
	rep, err := orders.Verify(context.Background(), cl, opts)
	require.NoError(e.t, err)
	return rep
}

// tryVerify is verify for polling: Verify fails while the topics the
// instances create do not exist yet.
func (e *env) tryVerify(payments bool) (*orders.Report, error) {
	cl, err := e.client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	opts := e.topics.VerifyOptions(payments)
	opts.IdleTimeout = 5 * time.Second
	return orders.Verify(context.Background(), cl, opts)
}

// waitVerified polls Verify until the pipeline's output is complete and
// correct, or fails with the last report after timeout.
func (e *env) waitVerified(payments bool, timeout time.Duration) *orders.Report {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		e.failed()
		rep, err := e.tryVerify(payments)
		if err == nil && rep.OK() {
			return rep
		}
		if time.Now().After(deadline) {
			require.NoError(e.t, err)
			e.t.Fatalf("pipeline did not complete correctly within %s:\n%s", timeout, rep.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// finalCheck stops every instance, then verifies E1-E3 and E5 on the topics
// (with the changelogs checked for E5 too) and E4 on the order service's
// local state.
func (e *env) finalCheck(payments bool, extraDirs ...string) *orders.Report {
	e.t.Helper()
	e.mu.Lock()
	insts := e.insts
	e.mu.Unlock()
	dirs := extraDirs
	var paymentDirs []string
	for _, in := range insts {
		in.close(e.t)
		switch in.service {
		case "order":
			dirs = append(dirs, in.dir)
		case "payment":
			paymentDirs = append(paymentDirs, in.dir)
		}
	}
	rep := e.verify(payments, 15*time.Second)
	require.True(e.t, rep.OK(), rep.String())
	local, err := orders.CheckLocalState(dirs, e.parts, rep.Expected)
	require.NoError(e.t, err)
	require.Empty(e.t, local, "E4")
	if payments {
		require.NotEmpty(e.t, paymentDirs, "payments checked but no payment instance ran")
		e.checkPaymentState(paymentDirs)
	}
	return rep
}

// checkPaymentState is E4 for the payment service: every partition's
// payments state, read from the directory with the newest checkpoint of
// it, holds one attempt per event of that partition with its amount, and
// nothing else.
func (e *env) checkPaymentState(dirs []string) {
	e.t.Helper()
	want := make(map[int32]map[string]orders.PaymentState)
	for p, recs := range e.readFrom(e.topics.Events, nil) {
		want[p] = make(map[string]orders.PaymentState)
		for _, r := range recs {
			ev, err := orders.DecodeEvent(r.Value)
			require.NoError(e.t, err, "event at %d/%d", p, r.Offset)
			want[p][ev.OrderID] = orders.PaymentState{Attempts: 1, AmountCents: ev.AmountCents}
		}
	}
	dbs := make([]*exactlytest.StateDir, len(dirs))
	for i, d := range dirs {
		db, err := exactlytest.OpenStateDir(d)
		require.NoError(e.t, err)
		defer db.Close()
		dbs[i] = db
	}
	for p := range e.parts {
		var newest *exactlytest.StateDir
		best := int64(-1)
		for _, db := range dbs {
			off, ok, err := db.Checkpoint(orders.StorePayments, p)
			require.NoError(e.t, err)
			if ok && off > best {
				newest, best = db, off
			}
		}
		got := make(map[string]orders.PaymentState)
		if newest != nil {
			all, err := exactlytest.StoreAs(newest, orders.StorePayments, []int32{p}, topology.String(), orders.PaymentStateSerde())
			require.NoError(e.t, err)
			maps.Copy(got, all[p])
		}
		if want[p] == nil {
			want[p] = make(map[string]orders.PaymentState)
		}
		require.Equal(e.t, want[p], got, "E4: payments state of partition %d must hold one attempt per event", p)
	}
}
