// Package servicesdemo is the services demo (`exactly demo-services`): the
// seeds' architecture end to end, under random process kills, checked for
// exactly-once from the HTTP API to the payment database.
//
// The order service (examples/orderservice, in this process) saves each
// order and its outbox row in one database transaction; the outbox relay
// (`exactly relay`) publishes the rows to the orders topic; the order
// stream processor (`exactly run --service order`, one or more instances)
// turns each new order into an event; the payment service (`exactly
// payments`, on the transactional sink) writes one payment row per event
// into its own database. The relay, the processor instances and the
// payment service are child processes of the exactly binary, and the demo
// SIGKILLs and restarts them at random while a load generator posts orders
// with client retries. Then it drains and checks.
package servicesdemo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/examples/orderservice"
	"github.com/exactly-stream/exactly/outbox"
	"github.com/exactly-stream/exactly/sqldb"
)

// Config configures Run. Binary is required; every other field has a
// default.
type Config struct {
	// Binary is the exactly command that runs the relay, the processor
	// instances and the payment service. Required.
	Binary string
	// Brokers is a cluster to run on. The default value is nil: an
	// embedded three-broker kfake cluster.
	Brokers []string
	// KgoOpts are client options (TLS, SASL) of the demo's own clients on
	// Brokers; the children read theirs from the EXACTLY_* environment.
	KgoOpts []kgo.Opt
	// Dialect, OrderDSN and PaymentDSN are the order service's and the
	// payment service's databases, two databases of one dialect. The
	// default value is SQLite files in a temporary directory.
	Dialect              sqldb.Dialect
	OrderDSN, PaymentDSN string
	// Duration is how long the load runs (and the kills go on). The
	// default value is 30s.
	Duration time.Duration
	// Seed draws the orders, the clients' retries and the kills. The
	// default value is 0: from the clock.
	Seed uint64
	// Rate is the orders per second posted. The default value is 100.
	Rate int
	// Processors is the number of order stream processor instances. The
	// default value is 2.
	Processors int
	// KillEvery is the mean interval between two kills. The default value
	// is 3s.
	KillEvery time.Duration
	// DrainTimeout bounds the wait, after the load, for every accepted
	// order to be paid. The default value is 2m.
	DrainTimeout time.Duration
	// Out receives the progress and the report. The default value
	// discards.
	Out io.Writer
	// Log receives the demo's own warnings. The default value discards.
	Log *slog.Logger
	// KeepLogs keeps the children's logs (and the SQLite files) after a
	// passing run too; a failing run always keeps them. The default value
	// is false.
	KeepLogs bool
}

func (c *Config) ensureDefaults() {
	c.Dialect = cmp.Or(c.Dialect, sqldb.SQLite)
	c.Duration = cmp.Or(c.Duration, 30*time.Second)
	c.Seed = cmp.Or(c.Seed, uint64(time.Now().UnixNano()))
	c.Rate = cmp.Or(c.Rate, 100)
	c.Processors = cmp.Or(c.Processors, 2)
	c.KillEvery = cmp.Or(c.KillEvery, 3*time.Second)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 2*time.Minute)
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration; its errors name the field at fault.
func (c *Config) Validate() error {
	switch {
	case c.Binary == "":
		return errors.New("servicesdemo: Binary is required")
	case c.Dialect != sqldb.SQLite && (c.OrderDSN == "" || c.PaymentDSN == ""):
		return fmt.Errorf("servicesdemo: a %s demo needs both OrderDSN and PaymentDSN", c.Dialect)
	case c.OrderDSN != "" && c.OrderDSN == c.PaymentDSN:
		return errors.New("servicesdemo: OrderDSN and PaymentDSN must be two databases")
	case (c.OrderDSN == "") != (c.PaymentDSN == ""):
		return errors.New("servicesdemo: give both OrderDSN and PaymentDSN, or neither")
	case c.Duration < 0, c.Rate < 0, c.Processors < 0, c.KillEvery < 0, c.DrainTimeout < 0:
		return errors.New("servicesdemo: Duration, Rate, Processors, KillEvery and DrainTimeout must not be negative")
	}
	return nil
}

// Report is what a run found.
type Report struct {
	Seed       uint64
	Load       loadStats
	Kills      map[string]int // per service: relay, order, payments
	Crashes    map[string]int // exits the demo did not cause, per child
	Saved      int            // rows of the orders table
	Published  int            // records of the orders topic
	Events     int            // records of the events topic
	Paid       int            // rows of the payments table
	Elapsed    time.Duration
	Violations []string
	LogDir     string // the children's logs, kept when there are violations
}

// OK says whether every check passed.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Run runs the demo: start, load with kills, drain, check. The error is
// for a demo that could not run; violations are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.ensureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "exactly-services-")
	if err != nil {
		return nil, fmt.Errorf("creating the demo's directory: %w", err)
	}
	d := &demo{cfg: cfg, root: root, rng: rand.New(rand.NewPCG(cfg.Seed, 0xdead)),
		rep: &Report{Seed: cfg.Seed, Kills: map[string]int{}, Crashes: map[string]int{}}}
	defer d.close()
	begin := time.Now()
	if err := d.run(ctx); err != nil {
		d.keep = true
		return d.rep, err
	}
	d.rep.Elapsed = time.Since(begin)
	d.keep = !d.rep.OK() || cfg.KeepLogs
	if d.keep {
		d.rep.LogDir = filepath.Join(root, "logs")
	}
	if err := ctx.Err(); err != nil {
		return d.rep, err
	}
	return d.rep, nil
}

// demo is one run's resources. Its children are owned by the goroutine
// that called Run.
type demo struct {
	cfg            Config
	root           string
	rng            *rand.Rand
	rep            *Report
	keep           bool // keep root (the logs) for a look
	prefix         string
	topics         orders.Topics
	brokers        []string
	cluster        *kfake.Cluster
	cl             *kgo.Client
	orderDB, payDB *sqlDB
	srv            *http.Server
	url            string
	wg             sync.WaitGroup // the children's reapers and the HTTP server
	kids           []*child
	accepted       map[string]orders.Order // the orders the API accepted, by id
	turns          []string                // the services still to kill this round (victim)
	closers        []func()
}

func (d *demo) close() {
	for _, c := range d.kids {
		c.stop(15 * time.Second)
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.wg.Wait()
	if !d.keep {
		os.RemoveAll(d.root)
	}
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.cfg.Out, format+"\n", args...) }

func (d *demo) run(ctx context.Context) error {
	if err := d.startCluster(ctx); err != nil {
		return err
	}
	if err := d.openDatabases(ctx); err != nil {
		return err
	}
	if err := d.startOrderService(); err != nil {
		return err
	}
	if err := d.startChildren(); err != nil {
		return err
	}
	d.printf("order service at %s; relay, %d order processor(s) and the payment service started (logs in %s)",
		d.url, d.cfg.Processors, filepath.Join(d.root, "logs"))
	if err := d.loadWithKills(ctx); err != nil {
		return err
	}
	if err := d.drain(ctx); err != nil {
		return err
	}
	for _, c := range d.kids {
		c.stop(15 * time.Second)
	}
	return d.check(ctx)
}

// partitions of the orders and events topics.
const partitions = 4

func (d *demo) startCluster(ctx context.Context) error {
	d.brokers = d.cfg.Brokers
	if len(d.brokers) == 0 {
		c, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			return fmt.Errorf("starting the embedded cluster: %w", err)
		}
		d.cluster, d.brokers = c, c.ListenAddrs()
		d.closers = append(d.closers, c.Close)
	} else {
		// A real cluster keeps every run's topics, groups and
		// transactional IDs: a replayed seed must not find them.
		d.prefix = fmt.Sprintf("svc-%d-%d-", d.cfg.Seed%1_000_000, time.Now().Unix()%1_000_000)
	}
	d.topics = orders.TopicsWithPrefix(d.prefix)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(d.brokers...)}, d.cfg.KgoOpts...)...)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", strings.Join(d.brokers, ","), err)
	}
	d.cl = cl
	d.closers = append(d.closers, cl.Close)
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, d.topics.Orders, d.topics.Events, d.topics.DLQ)
	if err != nil {
		return fmt.Errorf("creating the topics: %w", err)
	}
	for _, t := range resp.Sorted() {
		if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", t.Topic, t.Err)
		}
	}
	where := "the cluster at " + strings.Join(d.brokers, ",")
	if d.cluster != nil {
		where = "an embedded 3-broker cluster at " + strings.Join(d.brokers, ",")
	}
	d.printf("services demo on %s and %s databases; seed %d; topic prefix %q", where, d.cfg.Dialect, d.cfg.Seed, d.prefix)
	return nil
}

func (d *demo) startOrderService() error {
	svc, err := orderservice.New(d.orderDB.DB, d.cfg.Dialect, orderservice.Topic(d.topics.Orders), orderservice.WithLogger(d.cfg.Log))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening for the order service: %w", err)
	}
	d.srv = &http.Server{Handler: svc, ReadHeaderTimeout: 5 * time.Second}
	d.url = "http://" + ln.Addr().String()
	d.wg.Go(func() { _ = d.srv.Serve(ln) })
	d.closers = append(d.closers, func() { _ = d.srv.Close() })
	return nil
}

// Children's timeouts: short, so that a killed member's partitions move
// on within seconds. The transaction timeout stays the same for every
// incarnation (kfake keeps the one a transactional ID first had).
const (
	sessionTimeout = 6 * time.Second
	txnTimeout     = 5 * time.Second
)

func (d *demo) startChildren() error {
	logs := filepath.Join(d.root, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return fmt.Errorf("creating the log directory: %w", err)
	}
	brokers, dialect := strings.Join(d.brokers, ","), d.cfg.Dialect.String()
	// The DSNs go through the environment, never the command line: a
	// password there shows in ps.
	d.kids = append(d.kids, &child{name: "relay", args: []string{"relay", "--db-dialect", dialect, "--brokers", brokers,
		"--name", d.prefix + "services", "--batch-size", "200", "--poll-interval", "100ms",
		"--transaction-timeout", txnTimeout.String()}, env: []string{"EXACTLY_DB_DSN=" + d.orderDB.dsn}})
	for i := 1; i <= d.cfg.Processors; i++ {
		id := fmt.Sprintf("order-%d", i)
		d.kids = append(d.kids, &child{name: id, args: []string{"run", "--service", "order", "--brokers", brokers,
			"--instance-id", id, "--state-dir", filepath.Join(d.root, id), "--topic-prefix", d.prefix,
			"--session-timeout", sessionTimeout.String(), "--transaction-timeout", txnTimeout.String(),
			"--commit-interval", "100ms"}})
	}
	d.kids = append(d.kids, &child{name: "payments", args: []string{"payments", "--brokers", brokers, "--db-dialect", dialect,
		"--topic-prefix", d.prefix, "--group", d.prefix + "services-payments", "--instance-id", "payments-1",
		"--session-timeout", sessionTimeout.String(), "--fetch-max-wait", "200ms"}, env: []string{"EXACTLY_DB_DSN=" + d.payDB.dsn}})
	for _, c := range d.kids {
		c.bin, c.logPath = d.cfg.Binary, filepath.Join(logs, c.name+".log")
		if err := c.start(&d.wg); err != nil {
			return err
		}
	}
	return nil
}

// kind is the service a child runs, as the report counts kills.
func (c *child) kind() string {
	if strings.HasPrefix(c.name, "order-") {
		return "order"
	}
	return c.name
}

// loadWithKills runs the load for the configured duration and, meanwhile,
// kills a random child every KillEvery on average and restarts it a moment
// later. The orders started before the end finish during the drain.
func (d *demo) loadWithKills(ctx context.Context) error {
	lctx, stop := context.WithTimeout(ctx, d.cfg.Duration)
	defer stop()
	dctx, stopDrain := context.WithTimeout(ctx, d.cfg.Duration+d.cfg.DrainTimeout)
	defer stopDrain()
	l := newLoad(d.url, fmt.Sprintf("r%d", d.cfg.Seed%1_000_000), d.cfg.Seed)
	loadErr := make(chan error, 1)
	d.wg.Go(func() { loadErr <- l.run(lctx, dctx, 4, d.cfg.Rate) })
	progress := time.Now()
	for lctx.Err() == nil {
		if !sleep(lctx, d.jitter(d.cfg.KillEvery)) {
			break
		}
		if err := d.reviveCrashed(); err != nil {
			return err
		}
		victim := d.victim()
		// A member killed in the middle of a group rebalance holds the
		// rebalance for its rebalance timeout (kgo's default 60s, which
		// `exactly payments` does not set): let it settle first.
		if !sleep(lctx, minUptime-time.Since(victim.started)) {
			break
		}
		victim.kill()
		d.rep.Kills[victim.kind()]++
		sleep(ctx, d.restartDelay(victim))
		if err := victim.start(&d.wg); err != nil {
			return err
		}
		if time.Since(progress) >= 5*time.Second {
			st := l.stats()
			d.printf("  %d orders accepted, %d kills so far", st.Accepted, d.kills())
			progress = time.Now()
		}
	}
	err := <-loadErr
	d.rep.Load = l.stats()
	d.accepted = l.orders
	d.printf("load done: %d orders accepted from %d requests (%d sent twice, %d timed out on the client, %d retries, %d answered as replays); %d kills",
		d.rep.Load.Accepted, d.rep.Load.Requests, d.rep.Load.Doubled, d.rep.Load.TimedOut, d.rep.Load.Retried, d.rep.Load.Replayed, d.kills())
	if err != nil {
		return fmt.Errorf("the load generator: %w", err)
	}
	return d.reviveCrashed()
}

// victim picks the next child to kill: the services take turns, in a
// random order per round, so that each is killed in every round; within
// the processors, the instance is random.
func (d *demo) victim() *child {
	if len(d.turns) == 0 {
		d.turns = []string{"relay", "order", "payments"}
		d.rng.Shuffle(len(d.turns), func(i, j int) { d.turns[i], d.turns[j] = d.turns[j], d.turns[i] })
	}
	kind := d.turns[0]
	d.turns = d.turns[1:]
	var of []*child
	for _, c := range d.kids {
		if c.kind() == kind {
			of = append(of, c)
		}
	}
	return of[d.rng.IntN(len(of))]
}

func (d *demo) kills() int {
	n := 0
	for _, k := range d.rep.Kills {
		n += k
	}
	return n
}

func (d *demo) reviveCrashed() error {
	for _, c := range d.kids {
		before := c.crashes
		if err := c.reviveCrashed(&d.wg); err != nil {
			return err
		}
		if c.crashes > before {
			d.rep.Crashes[c.name]++
			d.cfg.Log.Warn("a child exited on its own; restarted it", "child", c.name, "log", c.logPath)
		}
	}
	return nil
}

// minUptime is how long a child runs at least before it is killed.
const minUptime = 5 * time.Second

// restartDelay is how long a killed child stays down. The payment service
// (a dynamic group member) stays down until its session expired, as a
// supervisor's restart would often be: a new member joining while the
// dead one is still in the group starts a rebalance that waits for the
// dead one up to its rebalance timeout.
func (d *demo) restartDelay(c *child) time.Duration {
	if c.kind() == "payments" {
		return sessionTimeout + time.Second
	}
	return d.jitter(500 * time.Millisecond)
}

// jitter returns a random duration in [mean/2, 3*mean/2).
func (d *demo) jitter(mean time.Duration) time.Duration {
	return mean/2 + time.Duration(d.rng.Int64N(int64(mean)))
}

// sleep waits dur and says whether ctx is still live.
func sleep(ctx context.Context, dur time.Duration) bool { return exactlytest.Sleep(ctx, dur) == nil }

// drain waits, the children all running, until the outbox is empty and
// every accepted order is paid, or DrainTimeout.
func (d *demo) drain(ctx context.Context) error {
	d.printf("draining: no more kills; waiting for %d orders to be paid", len(d.accepted))
	deadline := time.Now().Add(d.cfg.DrainTimeout)
	last := time.Now()
	for {
		left, err := d.orderDB.count(ctx, outbox.DefaultTable)
		if err != nil {
			return err
		}
		paid, err := d.payDB.count(ctx, "payments")
		if err != nil {
			return err
		}
		switch {
		case left == 0 && paid >= len(d.accepted):
			return nil
		case time.Now().After(deadline):
			d.printf("drain timed out after %s: %d outbox rows left, %d of %d orders paid", d.cfg.DrainTimeout, left, paid, len(d.accepted))
			return nil
		case time.Since(last) >= 5*time.Second:
			d.printf("  %d outbox rows left, %d of %d orders paid", left, paid, len(d.accepted))
			last = time.Now()
		}
		if err := d.reviveCrashed(); err != nil {
			return err
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// Print writes the report: what ran, what was killed, what each stage
// holds, and the violations or PASS.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "kills: relay %d, order processors %d, payment service %d; children that exited on their own: %d\n",
		r.Kills["relay"], r.Kills["order"], r.Kills["payments"], len(r.Crashes))
	fmt.Fprintf(w, "accepted %d orders; orders table %d rows; orders topic %d records; events topic %d events; payments table %d rows\n",
		r.Load.Accepted, r.Saved, r.Published, r.Events, r.Paid)
	fmt.Fprintf(w, "took %s (seed %d)\n", r.Elapsed.Round(time.Millisecond), r.Seed)
	if r.LogDir != "" {
		fmt.Fprintln(w, "the children's logs are kept in "+r.LogDir)
	}
	if r.OK() {
		fmt.Fprintln(w, "PASS: every accepted order saved once, published once, one event, one payment; nothing dead-lettered")
		return
	}
	fmt.Fprintf(w, "FAIL: %d violations:\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintln(w, "  "+v)
	}
}
