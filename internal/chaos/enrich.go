package chaos

// The enrich mode soaks `enrich run` (examples/enrich/cmd/enrich: orders
// LeftJoin a compacted customers table, each order enriched with its
// customer's profile as of the order's timestamp) with the pipeline
// mode's failures: kills (some on a wiped state directory), clean
// restarts, freezes, scaling and kfake broker faults on the output topic.
// Like the revenue mode, the producer runs its own idle phases
// (production stops for IdleFor while the failures go on); there are no
// operator resets.
//
// "Every order enriched with the profile as of its timestamp" holds for
// live data only if every profile version stamped at or before T is
// written and acknowledged before an order stamped T or later is
// written: the processor then sees the version (or waits for it, up to
// its lag wait) before the order. So each step of the producer writes
// the versions due, stamped t, waits for their acknowledgement
// (ProduceSync), then writes the orders, stamped t+1 ms; timestamps
// increase from step to step. At the end production stops, the group
// drains the orders, and enrich.Check, on the committed output
// (read_committed), must find every order exactly once, unchanged, with
// its customer's profile as of its timestamp.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/enrich"
)

// enrichRun is the enrich mode's part of a run. The producer appends
// under mu; the chaos loop reads after calm.
type enrichRun struct {
	mu       sync.Mutex
	versions []enrich.Version
	placed   []enrich.Placed
	next     map[string]int // customer -> its next version number
	lastMs   int64          // the latest timestamp written, in ms
}

// EnrichReport is what an enrich soak produced and what enrich.Check
// found.
type EnrichReport struct {
	Orders, Versions int // produced
	Output           int // committed output records
	Checked          bool
	Violations       []string // enrich.Check's, one a line
}

// enrichTopics points the run's topics at the enrich example's: the
// orders topic is the input the soak measures lag on, the enriched topic
// the output the broker faults hit. The customers topic is created
// (compacted, co-partitioned) by enrichCustomersTopic.
func (r *run) enrichTopics() {
	r.group = r.cfg.TopicPrefix + enrich.Group
	r.topics.Orders = r.cfg.TopicPrefix + enrich.TopicOrders
	r.topics.Events = r.cfg.TopicPrefix + enrich.TopicEnriched
	r.enr = &enrichRun{next: make(map[string]int)}
	r.st.r.Enrich = &EnrichReport{}
}

// startEnrichProducer writes a step every 100 ms (see the top of this
// file), with idle phases, until calm closes prodStop.
func (r *run) startEnrichProducer() {
	r.prodStop = make(chan struct{})
	rng := newRand(r.cfg.Seed, 0x656e72)
	r.wg.Go(func() {
		cl, err := r.client()
		if err != nil {
			r.failProducer(err)
			return
		}
		defer cl.Close()
		perStep := max(1, r.cfg.Rate/10)
		r.pace(func() error { return r.produceEnrichStep(cl, rng, perStep) })
	})
}

// produceEnrichStep writes new profile versions of a few random
// customers stamped t, waits until they are acknowledged, then n orders
// of random customers stamped t+1 ms, and records both once written. t
// is the wall clock's millisecond, past the previous step's orders.
func (r *run) produceEnrichStep(cl *kgo.Client, rng *rand.Rand, n int) error {
	e := r.enr
	e.mu.Lock()
	t := max(time.Now().UnixMilli(), e.lastMs+1)
	var versions []enrich.Version
	for range max(1, n/5) {
		c := "c" + strconv.Itoa(rng.IntN(r.cfg.Customers))
		if slices.ContainsFunc(versions, func(v enrich.Version) bool { return v.Customer == c }) {
			continue // one version per customer and timestamp: Expected cannot order equal times
		}
		versions = append(versions, enrich.Version{Customer: c, Profile: c + "-v" + strconv.Itoa(e.next[c]), Time: time.UnixMilli(t)})
		e.next[c]++
	}
	placed := make([]enrich.Placed, n)
	for i := range placed {
		placed[i] = enrich.Placed{
			Customer: "c" + strconv.Itoa(rng.IntN(r.cfg.Customers)),
			Order:    enrich.Order{ID: "o" + strconv.Itoa(len(e.placed)+i), AmountCents: 1 + rng.Int64N(100_000)},
			Time:     time.UnixMilli(t + 1),
		}
	}
	e.mu.Unlock()
	custRecs, orderRecs := enrich.Records(r.cfg.TopicPrefix, versions, placed)
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, custRecs...).FirstErr(); err != nil {
		return fmt.Errorf("producing profile versions: %w", err)
	}
	// The versions are acknowledged: they are recorded as produced even
	// if the orders fail (then the run fails anyway).
	e.mu.Lock()
	e.versions = append(e.versions, versions...)
	e.mu.Unlock()
	if err := cl.ProduceSync(ctx, orderRecs...).FirstErr(); err != nil {
		return fmt.Errorf("producing orders: %w", err)
	}
	e.mu.Lock()
	e.placed = append(e.placed, placed...)
	e.lastMs = t + 1
	e.mu.Unlock()
	r.st.add(func(rep *Report) {
		rep.Enrich.Orders, rep.Enrich.Versions = rep.Enrich.Orders+n, rep.Enrich.Versions+len(versions)
	})
	return nil
}

// enrichCheck reads the committed output, runs enrich.Check on it and
// completes the report. The instances are stopped: what is committed is
// final.
func (r *run) enrichCheck(ctx context.Context) (*Report, error) {
	cl, err := r.client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []enrich.Output
	err = exactlytest.ReadCommittedFunc(ctx, cl, r.topics.Events, exactlytest.ReadOptions{}, func(rec *kgo.Record) error {
		var e enrich.Enriched
		if err := json.Unmarshal(rec.Value, &e); err != nil {
			return fmt.Errorf("output record at %s[%d]@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		out = append(out, enrich.Output{Customer: string(rec.Key), Enriched: e})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the enriched orders: %w", err)
	}
	r.enr.mu.Lock()
	verr := enrich.Check(r.enr.versions, r.enr.placed, out)
	r.enr.mu.Unlock()
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	rep := r.st.r
	er := *rep.Enrich
	er.Output, er.Checked = len(out), true
	if verr != nil {
		er.Violations = strings.Split(verr.Error(), "\n")
	}
	rep.Enrich = &er
	if r.kfake != nil {
		rep.Generations = r.gen.Load()
	}
	if r.faults != nil {
		rep.Faults = r.faults.injected()
	}
	return &rep, nil
}

// enrichString is Report.String for the enrich mode.
func (r *Report) enrichString() string {
	var b strings.Builder
	v := r.Enrich
	fmt.Fprintf(&b, "chaos (enrich): seed %d, failures for %s on %s, %d orders/s\n", r.Seed, r.Duration, r.Cluster, r.Rate)
	fmt.Fprintf(&b, "  orders %d, profile versions %d; %d enriched orders committed\n", v.Orders, v.Versions, v.Output)
	fmt.Fprintf(&b, "  instances: %d processes started; %d SIGKILLed (%d restarted on a wiped state dir), %d stopped and restarted cleanly, %d frozen past the session timeout, %d scale-ups, %d scale-downs\n",
		r.Started, r.Killed, r.WipedRestarts, r.Stopped, r.Paused, r.ScaledUp, r.ScaledDown)
	var idle time.Duration
	for _, ph := range r.Phases {
		idle += ph.Took
	}
	fmt.Fprintf(&b, "  idle phases: %d (%s without orders or profiles)\n", len(r.Phases), idle.Round(time.Second))
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
		b.WriteString("enrich.Check: not run\n")
	}
	for _, line := range v.Violations {
		fmt.Fprintf(&b, "  violation: %s\n", line)
	}
	if r.OK() {
		b.WriteString("PASS: every order enriched exactly once, with its customer's profile as of its timestamp, under chaos\n")
	} else {
		fmt.Fprintf(&b, "FAIL: %d violations (replay the choices with --seed %d)\n", r.Violations(), r.Seed)
	}
	return b.String()
}
