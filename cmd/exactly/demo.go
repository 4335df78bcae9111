package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// instance is one running service instance of the demo.
type instance struct {
	name   string
	dir    string
	p      *processor.Processor
	cancel context.CancelFunc
	done   chan error
}

// fleet starts and stops instances; every goroutine it starts is tracked
// and waited for by stopAll.
type fleet struct {
	brokers []string
	root    string
	log     *slog.Logger
	wg      sync.WaitGroup
	mu      sync.Mutex
	all     []*instance
}

func (f *fleet) start(service, name string) (*instance, error) {
	dir := filepath.Join(f.root, name)
	topo, group, dlq, err := demoService(service)
	if err != nil {
		return nil, err
	}
	p, err := processor.New(topo,
		processor.WithLogger(f.log.With("instance", name)),
		processor.Brokers(f.brokers...), processor.Group(group), processor.InstanceID(name),
		processor.StateDir(dir), processor.DeadLetterTopic(dlq),
		processor.MaxRecordsPerTxn(1000), processor.CommitInterval(100*time.Millisecond),
		processor.TransactionTimeout(10*time.Second), processor.CreateTopics(true),
		processor.KgoOpts(kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(10*time.Second/15)),
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{name: name, dir: dir, p: p, cancel: cancel, done: make(chan error, 1)}
	f.wg.Go(func() { in.done <- p.Run(ctx) })
	f.mu.Lock()
	f.all = append(f.all, in)
	f.mu.Unlock()
	return in, nil
}

// stop stops one instance: its open transaction ends, it leaves the group.
func (in *instance) stop() error {
	in.cancel()
	if err := <-in.done; err != nil {
		return fmt.Errorf("instance %s: %w", in.name, err)
	}
	in.done <- nil // stop is idempotent
	return nil
}

func (f *fleet) stopAll() error {
	var errs []error
	for _, in := range f.all {
		errs = append(errs, in.stop())
	}
	f.wg.Wait()
	return errors.Join(errs...)
}

// records sums the committed input records of the service's instances.
func (f *fleet) records(prefix string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, in := range f.all {
		if len(in.name) >= len(prefix) && in.name[:len(prefix)] == prefix {
			n += in.p.Stats().Records
		}
	}
	return n
}

// failed returns the first instance error that ended a Run early.
func (f *fleet) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.all {
		select {
		case err := <-in.done:
			in.done <- err
			if err != nil {
				return fmt.Errorf("instance %s: %w", in.name, err)
			}
		default:
		}
	}
	return nil
}

func joinBrokers(bs []string) string {
	out := ""
	for i, b := range bs {
		if i > 0 {
			out += ","
		}
		out += b
	}
	return out
}

// demoService returns the topology, group and dead-letter topic of the
// order or payment service, unprefixed.
func demoService(service string) (*topology.Topology, string, string, error) {
	if service == "payment" {
		t, err := paymentTopology("")
		return t, orders.DefaultPaymentGroup, orders.TopicPaymentsDLQ, err
	}
	t, err := orderTopology("")
	return t, orders.DefaultOrderGroup, orders.TopicDLQ, err
}

var demoCommand = app.Command{
	Name:    "demo",
	Summary: "run the whole pipeline on an embedded three-broker cluster and verify it",
	Description: "Start an embedded three-broker kfake cluster, three order-service instances and the payment " +
		"stage in this process, produce orders, replace one order instance mid-run, then verify exactly-once " +
		"(E1-E5) and the instances' local state. It exits 3 when it finds violations.",
	Setup: demoSetup,
}

func demoSetup(fs *flag.FlagSet) app.Runner {
	var pc orders.ProduceConfig
	produceFlags(fs, &pc)
	fs.Lookup("count").DefValue, pc.Count = "100000", 100000
	fs.Lookup("customers").DefValue, pc.Customers = "1000", 1000
	partitions := fs.Int("partitions", 6, "partitions of the orders topic")
	logLevel := fs.String("log-level", "warn", "log level of the instances: debug, info, warn, error")
	return func(ctx context.Context, stdout io.Writer) error {
		if err := pc.Validate(); err != nil {
			return fmt.Errorf("%w: %w", app.ErrUsage, err)
		}
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
			return fmt.Errorf("%w: --log-level: %w", app.ErrUsage, err)
		}
		if *partitions < 1 || *partitions > 1000 {
			return app.Usagef("--partitions: want 1..1000, got %d", *partitions)
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
		return runDemo(ctx, stdout, log, pc, int32(*partitions))
	}
}

// runDemo is the demo: an embedded three-broker cluster, orders produced
// while three order-service instances and the payment stage run, one
// instance replaced mid-run, then verification of E1-E5.
func runDemo(ctx context.Context, out io.Writer, log *slog.Logger, pc orders.ProduceConfig, partitions int32) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(partitions, orders.TopicOrders, orders.TopicEvents))
	if err != nil {
		return fmt.Errorf("starting the embedded cluster: %w", err)
	}
	defer cluster.Close()
	root, err := os.MkdirTemp("", "exactly-demo-")
	if err != nil {
		return fmt.Errorf("creating state directories: %w", err)
	}
	defer os.RemoveAll(root)
	brokers := cluster.ListenAddrs()
	fmt.Fprintf(out, "embedded cluster: 3 brokers at %s; orders topic with %d partitions; seed %d\n", joinBrokers(brokers), partitions, pc.Seed)

	f := &fleet{brokers: brokers, root: root, log: log}
	begin := time.Now()
	st, err := demoPipeline(ctx, out, f, pc)
	stopErr := f.stopAll()
	if err = errors.Join(err, stopErr); err != nil {
		return err
	}
	elapsed := time.Since(begin)
	return demoVerify(ctx, out, f, st, partitions, elapsed)
}

func demoPipeline(ctx context.Context, out io.Writer, f *fleet, pc orders.ProduceConfig) (orders.ProduceStats, error) {
	for _, n := range []string{"order-1", "order-2", "order-3"} {
		if _, err := f.start("order", n); err != nil {
			return orders.ProduceStats{}, err
		}
	}
	if _, err := f.start("payment", "payment-1"); err != nil {
		return orders.ProduceStats{}, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...))
	if err != nil {
		return orders.ProduceStats{}, err
	}
	defer cl.Close()
	st, err := orders.Produce(ctx, cl, pc)
	if err != nil {
		return st, fmt.Errorf("producing orders: %w", err)
	}
	fmt.Fprintf(out, "produced %d orders: %d valid, %d malformed, %d re-sent duplicates\n", st.Produced, st.Valid, st.Malformed, st.Duplicates)

	total, events := int64(st.Produced), int64(st.Valid)
	if err := waitProgress(ctx, out, f, "order-", total/3); err != nil {
		return st, err
	}
	fmt.Fprintln(out, "stopping order-2 and starting order-4: the group rebalances")
	f.mu.Lock()
	victim := f.all[1]
	f.mu.Unlock()
	if err := victim.stop(); err != nil {
		return st, err
	}
	if _, err := f.start("order", "order-4"); err != nil {
		return st, err
	}
	if err := waitProgress(ctx, out, f, "order-", total); err != nil {
		return st, err
	}
	return st, waitProgress(ctx, out, f, "payment-", events)
}

// waitProgress waits until the service's instances committed want input
// records, printing progress every second.
func waitProgress(ctx context.Context, out io.Writer, f *fleet, prefix string, want int64) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		got := f.records(prefix)
		if got >= want {
			return nil
		}
		if err := f.failed(); err != nil {
			return err
		}
		if time.Since(last) >= time.Second {
			fmt.Fprintf(out, "  %s service: %d/%d records committed\n", prefix[:len(prefix)-1], got, want)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func demoVerify(ctx context.Context, out io.Writer, f *fleet, st orders.ProduceStats, partitions int32, elapsed time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	rep, err := orders.Verify(ctx, cl, orders.VerifyOptions{
		Payments: true,
		StableTopics: []string{
			processor.ChangelogTopic(orders.DefaultOrderGroup, orders.StoreCustomers),
			processor.ChangelogTopic(orders.DefaultOrderGroup, orders.StoreOrderIDs),
			processor.ChangelogTopic(orders.DefaultPaymentGroup, orders.StorePayments),
		},
		StableWait: 10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("verifying: %w", err)
	}
	var dirs []string
	for _, in := range f.all {
		if in.name[:6] == "order-" {
			dirs = append(dirs, in.dir)
		}
	}
	local, err := orders.CheckLocalState(dirs, partitions, rep.Expected)
	if err != nil {
		return fmt.Errorf("checking local state: %w", err)
	}
	fmt.Fprintln(out, rep.String())
	for _, v := range local {
		fmt.Fprintln(out, "  "+v)
	}
	if len(local) == 0 {
		fmt.Fprintf(out, "E4 local state of %d customers and %d order ids equals the fold of the inputs\n",
			len(rep.Expected.Customers), len(rep.Expected.OrderIDs))
	}
	var aborted int64
	for _, in := range f.all {
		aborted += in.p.Stats().Aborted
	}
	fmt.Fprintf(out, "processed %d orders and %d payments in %s: %.0f orders/s through both stages; %d transactions aborted and retried\n",
		st.Produced, st.Valid, elapsed.Round(time.Millisecond), float64(st.Produced)/elapsed.Seconds(), aborted)
	if !rep.OK() || len(local) > 0 {
		return app.ErrViolations
	}
	fmt.Fprintln(out, "PASS: exactly once")
	return nil
}
