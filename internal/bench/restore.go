package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/processor"
)

// restore fills the changelogs with RestoreCustomers customers by running
// the pipeline over one order per customer (a customer record and an order
// id record each), then measures a fresh instance
// restoring it into an empty state directory, the same instance restarting
// on its directory (restore from the local checkpoint), and the peak RSS of
// an `exactly run` child restoring it.
//
// The topics and group are those `exactly run --topic-prefix <prefix>`
// uses, so that the child joins the same application.
func (r *runner) restore(ctx context.Context, res *Results) error {
	c := &r.cfg
	n := c.RestoreCustomers
	prefix := c.TopicPrefix + "restore-"
	a := app{group: prefix + orders.DefaultOrderGroup, topics: orders.TopicsWithPrefix(prefix)}
	defer r.cluster.cleanup(ctx, append(a.outputs(), a.topics.Orders), a.group)
	if err := r.cluster.createTopic(ctx, a.topics.Orders, c.Partitions, false); err != nil {
		return err
	}
	c.progressf("restore: %d customers", n)
	if err := r.produceDistinct(ctx, a.topics.Orders, "r", n, n); err != nil {
		return err
	}
	fill, err := r.measurePipeline(ctx, a, int64(n), 10000, time.Second, 1)
	if err != nil {
		return fmt.Errorf("filling the changelog: %w", err)
	}
	c.progressf("  %-32s %10s records/s  (%d records in %s)", "fill (txn 10000, commit 1s)", thousands(fill.RecordsPerSec), fill.Records, round(fill.Elapsed))
	if c.runs(PartRestore) {
		rs, err := r.restoreRuns(ctx, a, n, fill)
		if err != nil {
			return err
		}
		res.Restore = rs
	}
	if c.runs(PartRSS) {
		x, err := r.rss(ctx, prefix, a, n)
		if err != nil {
			return err
		}
		res.RSS = x
	}
	return nil
}

func (r *runner) restoreRuns(ctx context.Context, a app, n int, fill Measurement) (*Restore, error) {
	dir, err := os.MkdirTemp(r.cfg.Dir, "exactly-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rs := &Restore{Customers: n, Fill: fill}
	for i, dst := range []*RestoreRun{&rs.FromEmpty, &rs.FromCheckpoint} {
		run, err := r.restoreOnce(ctx, a, dir)
		if err != nil {
			return nil, err
		}
		*dst = run
		r.cfg.progressf("  %-32s %10s records/s  (%d records restored in %s, ready in %s)",
			[]string{"restore from an empty state dir", "restore from the local checkpoint"}[i],
			perSec(run.RecordsPerSec), run.Records, round(run.Restoring), round(run.Ready))
	}
	f, err := r.fetchOnly(ctx, a.changelogs())
	if err != nil {
		return nil, err
	}
	rs.FetchOnly = &f
	r.cfg.progressf("  %-32s %10s records/s  (%d records in %s; every partition at once: %s records/s)",
		"fetch only, a partition at a time", perSec(f.SerialPerSec()), f.Records, round(f.Serial), perSec(f.ConcurrentPerSec()))
	return rs, nil
}

// restoreOnce starts instance "restore" on dir, waits until every partition
// was restored, and stops it.
func (r *runner) restoreOnce(ctx context.Context, a app, dir string) (RestoreRun, error) {
	var (
		mu  sync.Mutex
		run RestoreRun
	)
	spec := instanceSpec{app: a, dir: dir, txnSize: 1000, interval: 100 * time.Millisecond, hooks: processor.Hooks{
		OnRestore: func(ri processor.RestoreInfo) {
			mu.Lock()
			defer mu.Unlock()
			run.Records += ri.Records
			run.Restoring += ri.Duration
		},
	}}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	inst := r.startReady(ctx, &wg, spec, "restore")
	err := inst.wait(ctx, r.cfg.RunTimeout)
	ready := time.Since(start)
	cancel()
	if err = errors.Join(err, inst.stopped()); err != nil {
		return RestoreRun{}, fmt.Errorf("restoring: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	run.Ready = ready
	if run.Restoring > 0 {
		run.RecordsPerSec = float64(run.Records) / run.Restoring.Seconds()
	}
	return run, nil
}

// produceDistinct writes n valid orders with ids "<idPrefix>-<i>", order i
// for customer i modulo customers.
func (r *runner) produceDistinct(ctx context.Context, topic, idPrefix string, n, customers int) error {
	cl, err := r.cluster.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	var errs kgo.FirstErrPromise
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	serde := orders.OrderSerde()
	for i := range n {
		cust := fmt.Sprintf("c-%07d", i%customers)
		v, err := serde.Encode(orders.Order{
			OrderID: fmt.Sprintf("%s-%d", idPrefix, i), CustomerID: cust, AmountCents: int64(1 + i%1000), CreatedAt: created,
		})
		if err != nil {
			return err
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(cust), Value: v}, errs.Promise())
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if err := errs.Err(); err != nil {
		return fmt.Errorf("producing orders to %s: %w", topic, err)
	}
	return nil
}

// childEnvPrefix is the prefix of the environment variables of the
// exactly program (package app: EXACTLY_<FLAG>).
const childEnvPrefix = "EXACTLY_"

// rss runs `exactly run` as a child on an empty state directory: it
// restores the n customers, then processes RSSOrders more orders. Its
// VmHWM is read once the group committed them, before it is stopped.
func (r *runner) rss(ctx context.Context, prefix string, a app, n int) (*RSS, error) {
	c := &r.cfg
	dir, err := os.MkdirTemp(c.Dir, "exactly-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var stderr bytes.Buffer
	cmd := exec.Command(c.Exe, "run", "--service", "order",
		"--brokers", strings.Join(r.cluster.brokers, ","),
		"--topic-prefix", prefix, "--group", a.group, "--instance-id", "rss",
		"--state-dir", filepath.Join(dir, "rss"), "--max-records", "1000", "--commit-interval", "100ms",
		"--replication-factor", fmt.Sprint(c.Replication), "--log-level", "warn")
	// The connection settings go by environment, not by flags: a
	// password on a command line shows in ps.
	cmd.Env = r.cluster.security.Environ(os.Environ(), childEnvPrefix, "")
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s run: %w", c.Exe, err)
	}
	exited := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { exited <- cmd.Wait() })
	defer stopChild(cmd, exited)

	if err := r.produceDistinct(ctx, a.topics.Orders, "m", c.RSSOrders, n); err != nil {
		return nil, err
	}
	want := int64(n + c.RSSOrders)
	if err := r.waitCommitted(ctx, a, want, exited); err != nil {
		return nil, fmt.Errorf("rss child: %w; its output:\n%s", err, tail(stderr.String(), 2000))
	}
	x := &RSS{Customers: n, Orders: c.RSSOrders, Ready: time.Since(start)}
	if x.PeakBytes, err = peakRSS(cmd.Process.Pid); err != nil {
		return nil, err
	}
	c.progressf("  %-32s %10s  (ready in %s)", "peak RSS of exactly run", mb(x.PeakBytes), round(x.Ready))
	return x, nil
}

// waitCommitted waits until a's group committed want input records, or the
// child exits, or the run times out.
func (r *runner) waitCommitted(ctx context.Context, a app, want int64, exited chan error) error {
	deadline := time.Now().Add(r.cfg.RunTimeout)
	for {
		got, err := r.cluster.committedRecords(ctx, a.group, a.topics.Orders)
		if err == nil && got >= want {
			return nil
		}
		select {
		case err := <-exited:
			exited <- err
			if err == nil {
				return errors.New("exited before committing the orders")
			}
			return fmt.Errorf("exited before committing the orders: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d records committed within %s: %w", got, want, r.cfg.RunTimeout, errors.Join(err, errRunTimeout))
		}
	}
}

// stopChild ends the child cleanly (SIGTERM), or kills it after 30s.
func stopChild(cmd *exec.Cmd, exited chan error) {
	select {
	case err := <-exited:
		exited <- err
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
