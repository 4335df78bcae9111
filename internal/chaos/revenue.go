package chaos

// The revenue mode soaks `revenue run` (examples/revenue/cmd/revenue:
// sales keyed by till, re-keyed by product through a repartition topic,
// per-minute totals closed by a stream-time and a wall-clock punctuator)
// with the pipeline mode's failures: kills (some on a wiped state
// directory), clean restarts, freezes, scaling and kfake broker faults on
// the output topic. Sales carry the wall clock's time, a little jittered,
// so the wall-clock punctuator closes minutes as it would in production;
// like the mirror mode, the producer runs its own idle phases (production
// stops for IdleFor while the failures go on), in which quiet minutes can
// only close on the wall clock. At the end production stops, the group
// drains both topics, the soak waits until the wall clock closed the last
// minute, and revenue.Check must find every valid sale in exactly one
// total or dead-lettered once, no minute emitted twice and each total
// equal to its sales.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/revenue"
	"github.com/exactly-stream/exactly/topology"
)

// Revenue mode's sizes: products sold and tills ringing them up.
const (
	revenueProducts = 24
	revenueTills    = 12
)

// revenueRun is the revenue mode's part of a run. The producer appends to
// sales under mu; the chaos loop reads them after calm.
type revenueRun struct {
	mu    sync.Mutex
	sales []revenue.Sale
	last  time.Time // the latest sale time
}

// RevenueReport is what a revenue soak produced and what revenue.Check
// found.
type RevenueReport struct {
	Sales, Invalid int // produced; invalid ones must be dead-lettered
	Totals         int // (product, minute) totals emitted
	DeadLetters    int // committed dead letters, late and invalid
	Checked        bool
	Violations     []string // revenue.Check's, one a line
}

// revenueTopics points the run's topics at the revenue example's: the
// sales topic is the input the soak produces to and measures lag on, the
// revenue topic the output the broker faults hit.
func (r *run) revenueTopics() {
	r.group = r.cfg.TopicPrefix + revenue.Group
	r.topics.Orders = r.cfg.TopicPrefix + revenue.TopicSales
	r.topics.Events = r.cfg.TopicPrefix + revenue.TopicRevenue
	r.rev = &revenueRun{}
	r.st.r.Revenue = &RevenueReport{}
}

// startRevenueProducer writes a tenth of a second's sales every 100 ms,
// keyed by till, one in fifty invalid, with idle phases, until calm closes
// prodStop.
func (r *run) startRevenueProducer() {
	r.prodStop = make(chan struct{})
	rng := newRand(r.cfg.Seed, 0x73616c6573)
	r.wg.Go(func() {
		cl, err := r.client()
		if err != nil {
			r.failProducer(err)
			return
		}
		defer cl.Close()
		perBatch := max(1, r.cfg.Rate/10)
		r.pace(func() error { return r.produceSales(cl, rng, perBatch) })
	})
}

// produceSales writes n sales timed up to 2 s before now, and records
// them once written.
func (r *run) produceSales(cl *kgo.Client, rng *rand.Rand, n int) error {
	now := time.Now().UTC()
	sales := make([]revenue.Sale, n)
	recs := make([]*kgo.Record, n)
	for i := range sales {
		s := revenue.Sale{Product: fmt.Sprintf("product-%d", rng.IntN(revenueProducts)), AmountCents: 1 + rng.Int64N(10_000),
			Time: now.Add(-time.Duration(rng.Int64N(int64(2 * time.Second))))}
		if rng.IntN(50) == 0 {
			s.AmountCents = -s.AmountCents
		}
		v, err := json.Marshal(s)
		if err != nil {
			return err
		}
		sales[i] = s
		recs[i] = &kgo.Record{Topic: r.topics.Orders, Key: fmt.Appendf(nil, "till-%d", rng.IntN(revenueTills)), Value: v}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		return fmt.Errorf("producing sales: %w", err)
	}
	r.rev.mu.Lock()
	r.rev.sales = append(r.rev.sales, sales...)
	r.rev.last = now
	r.rev.mu.Unlock()
	invalid := 0
	for _, s := range sales {
		if s.Validate() != nil {
			invalid++
		}
	}
	r.st.add(func(rep *Report) {
		rep.Revenue.Sales, rep.Revenue.Invalid = rep.Revenue.Sales+n, rep.Revenue.Invalid+invalid
	})
	return nil
}

// revenueDrain waits until the group committed every sale and every
// repartitioned one, then until the wall clock is past the last sale's
// minute's end plus the wall-clock punctuator's grace and interval (with
// a margin): every minute must then be closed.
func (r *run) revenueDrain(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	var last error
	for {
		if err := r.housekeep(time.Now()); err != nil {
			return err
		}
		left, err := r.revenueLeft(ctx)
		if err == nil && left == 0 {
			break
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			r.describeStall(ctx)
			r.dumpAll()
			return fmt.Errorf("the revenue service did not drain within %s: %d sales left (last error: %v); the instances' goroutines are shown above", r.cfg.DrainTimeout, left, last)
		}
		if err := exactlytest.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	r.rev.mu.Lock()
	closed := r.rev.last.Truncate(revenue.Window).Add(revenue.Window + revenue.WallClockGrace + revenue.WallClockInterval + 5*time.Second)
	r.rev.mu.Unlock()
	fmt.Fprintf(r.cfg.Out, "drained: every sale committed; waiting %s for the wall clock to close the last minute\n", time.Until(closed).Round(time.Second))
	for time.Now().Before(closed) {
		if err := r.housekeep(time.Now()); err != nil {
			return err
		}
		if err := exactlytest.Sleep(ctx, min(time.Second, time.Until(closed))); err != nil {
			return err
		}
	}
	// A task assigned after the drain (the last kills' rebalances) fires
	// its wall-clock punctuator first one interval after its assignment,
	// so the last minute may close later than that: until the output
	// passes the check, or revenueCloseWait passed, the instances run on.
	// A violation that time cannot mend (a minute emitted twice) is
	// reported all the same, after the wait.
	for end := time.Now().Add(revenueCloseWait); time.Now().Before(end); {
		if err := r.housekeep(time.Now()); err != nil {
			return err
		}
		totals, dead, err := r.revenueOutput(ctx)
		if err == nil {
			r.rev.mu.Lock()
			err = revenue.Check(r.rev.sales, dead, totals, time.Time{})
			r.rev.mu.Unlock()
		}
		if err == nil {
			return nil
		}
		if err := exactlytest.Sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// revenueCloseWait bounds how long the soak waits, past the last minute's
// end plus the punctuator's grace and interval, for the output to be
// complete: rebalances after the drain can delay the wall clock's closing
// by an interval each.
const revenueCloseWait = 90 * time.Second

// revenueLeft returns the sales and repartitioned sales the group has not
// committed. The repartition topic is written in transactions: its end
// offsets lie past commit markers the group's offsets never pass, so what
// is left there is read from the committed offsets on.
func (r *run) revenueLeft(ctx context.Context) (int64, error) {
	lag, err := r.lag(ctx)
	if err != nil || lag > 0 {
		return lag, err
	}
	cl, err := r.client()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	topic := topology.RepartitionTopic(r.group, revenue.ByProduct)
	from, err := exactlytest.GroupOffsets(ctx, r.admin, r.group, topic)
	if err != nil {
		return 0, err
	}
	var left int64
	err = exactlytest.ReadCommittedFunc(ctx, cl, topic, exactlytest.ReadOptions{From: from}, func(*kgo.Record) error {
		left++
		return nil
	})
	return left, err
}

// revenueOutput reads the committed totals and dead letters.
func (r *run) revenueOutput(ctx context.Context) ([]revenue.Revenue, []revenue.Sale, error) {
	cl, err := r.client()
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	var totals []revenue.Revenue
	var dead []revenue.Sale
	read := func(topic string, fn func([]byte) error) error {
		return exactlytest.ReadCommittedFunc(ctx, cl, topic, exactlytest.ReadOptions{}, func(rec *kgo.Record) error { return fn(rec.Value) })
	}
	err = errors.Join(
		read(r.cfg.TopicPrefix+revenue.TopicRevenue, func(v []byte) error {
			var x revenue.Revenue
			err := json.Unmarshal(v, &x)
			totals = append(totals, x)
			return err
		}),
		read(r.cfg.TopicPrefix+revenue.TopicDeadLetter, func(v []byte) error {
			var s revenue.Sale
			err := json.Unmarshal(v, &s)
			dead = append(dead, s)
			return err
		}))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the revenue output: %w", err)
	}
	return totals, dead, nil
}

// revenueCheck reads the committed totals and dead letters, runs
// revenue.Check on them and completes the report. The instances are
// stopped: what is committed is final.
func (r *run) revenueCheck(ctx context.Context) (*Report, error) {
	totals, dead, err := r.revenueOutput(ctx)
	if err != nil {
		return nil, err
	}
	r.rev.mu.Lock()
	verr := revenue.Check(r.rev.sales, dead, totals, time.Time{})
	r.rev.mu.Unlock()
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	out := r.st.r
	rr := *out.Revenue
	rr.Totals, rr.DeadLetters, rr.Checked = len(totals), len(dead), true
	if verr != nil {
		rr.Violations = strings.Split(verr.Error(), "\n")
	}
	out.Revenue = &rr
	if r.kfake != nil {
		out.Generations = r.gen.Load()
	}
	if r.faults != nil {
		out.Faults = r.faults.injected()
	}
	return &out, nil
}

// revenueString is Report.String for the revenue mode.
func (r *Report) revenueString() string {
	var b strings.Builder
	v := r.Revenue
	fmt.Fprintf(&b, "chaos (revenue): seed %d, failures for %s on %s, %d sales/s\n", r.Seed, r.Duration, r.Cluster, r.Rate)
	fmt.Fprintf(&b, "  sales %d (%d invalid); emitted %d minute totals; %d dead letters (late or invalid)\n", v.Sales, v.Invalid, v.Totals, v.DeadLetters)
	fmt.Fprintf(&b, "  instances: %d processes started; %d SIGKILLed (%d restarted on a wiped state dir), %d stopped and restarted cleanly, %d frozen past the session timeout, %d scale-ups, %d scale-downs\n",
		r.Started, r.Killed, r.WipedRestarts, r.Stopped, r.Paused, r.ScaledUp, r.ScaledDown)
	var idle time.Duration
	for _, ph := range r.Phases {
		idle += ph.Took
	}
	fmt.Fprintf(&b, "  idle phases: %d (%s without sales)\n", len(r.Phases), idle.Round(time.Second))
	if r.Generations >= 0 {
		fmt.Fprintf(&b, "  rebalances: %d (group generations)\n", r.Generations)
	}
	fmt.Fprintf(&b, "  transactions aborted: %d%s\n", sum(r.Aborts), byKind(r.Aborts))
	fmt.Fprintf(&b, "  sessions recreated: %d; restores: %d store partitions, %d changelog records\n", r.SessionRestarts, r.Restores, r.RestoredRecords)
	if r.Faults != nil {
		fmt.Fprintf(&b, "  broker faults injected: %d%s\n", sum(r.Faults), byKind(r.Faults))
	}
	if r.Evicted > 0 {
		fmt.Fprintf(&b, "  kfake workaround: %d stale members of dead instances evicted\n", r.Evicted)
	}
	for _, e := range r.UnexpectedExits {
		fmt.Fprintf(&b, "  unexpected instance exit: %s\n", e)
	}
	if len(r.SlowStops) > 0 {
		fmt.Fprintf(&b, "  slow clean stops (no exit within the stop timeout of SIGTERM, killed): %s\n", strings.Join(r.SlowStops, ", "))
	}
	if !v.Checked {
		b.WriteString("revenue.Check: not run\n")
	}
	for _, line := range v.Violations {
		fmt.Fprintf(&b, "  violation: %s\n", line)
	}
	if r.OK() {
		b.WriteString("PASS: every sale in one total or dead-lettered, no minute emitted twice, under chaos\n")
	} else {
		fmt.Fprintf(&b, "FAIL: %d violations (replay the choices with --seed %d)\n", r.Violations(), r.Seed)
	}
	return b.String()
}
