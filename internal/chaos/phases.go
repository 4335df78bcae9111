package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/processor"
)

// Phases the random failures alone never reach: they interleave with them
// on a schedule (Config.IdleEvery, Config.ResetEvery).
//
// An idle phase stops production for longer than several session timeouts
// and rescales the group meanwhile. An instance that polls nothing ends no
// transaction, and kgo's GroupTransactSession only passes a revoke on to
// the processor until its next End; so an idle instance can lose a
// partition without being told, get it back after another instance
// committed to it, and go on from the state it had. To give that a
// chance, the group first shrinks to one or two instances (they stay idle
// to the end of the phase), then instances join one by one, a few orders
// go to the partitions the newcomers own only, and the newcomers leave
// again, each step after the group settled.
//
// An operator reset stops production and every instance once the
// pipeline drained, reads the group's committed offsets, runs one instance
// with --reset-state (changelogs recreated, state rebuilt from those
// offsets on, from empty), and restarts the others on their old state
// directories, which must not serve their old state; then production
// resumes. The recreated changelogs start again at offset 0, below the
// checkpoints the old directories hold, and a restore that took such a
// checkpoint for its own would only show once the new changelog passed
// it, and then only for customers the records past it do not overwrite.
// So, before the others restart, orders of one customer go to one
// partition until its new changelogs pass every old directory's
// checkpoint of it: every other customer of that partition is then stale
// in whichever old directory gets the partition, and its next order
// shows it. The checks take the reset offsets into account
// (orders.VerifyOptions.Resets).

// Phase kinds.
const (
	PhaseIdle  = "idle"
	PhaseReset = "reset"
)

// Phase is one idle phase or operator reset of a run.
type Phase struct {
	Kind string        // PhaseIdle or PhaseReset
	At   time.Duration // since the soak began
	Took time.Duration

	// Idle phase: instances added and stopped while production was
	// stopped, the instances left idle through it, and the orders
	// produced into the partitions of the instances that joined.
	ScaleUps, ScaleDowns int
	Idle                 []string
	Trickle              int

	// Reset: instances stopped before it, the instance run with
	// --reset-state, the instances restarted on their old state
	// directories, the sum over partitions of the committed offsets the
	// state was rebuilt from, and the orders of one customer sent to
	// partition Pushed to push its new changelogs past the old
	// checkpoints.
	Stopped   int
	ResetBy   string
	Restarted int
	Offsets   int64
	Pushed    int32
	Push      int

	// Unsettled counts waits (for a rebalance to complete, for the
	// pipeline to drain, for the group to empty) that timed out; the
	// phase went on regardless.
	Unsettled int
}

func (p Phase) String() string {
	at := fmt.Sprintf("at %s, took %s", p.At.Round(time.Second), p.Took.Round(time.Second))
	unsettled := ""
	if p.Unsettled > 0 {
		unsettled = fmt.Sprintf("; %d waits timed out", p.Unsettled)
	}
	if p.Kind == PhaseIdle {
		return fmt.Sprintf("idle %s: %s kept idle; %d scale-ups, %d scale-downs; %d orders to the newcomers' partitions%s",
			at, strings.Join(p.Idle, ","), p.ScaleUps, p.ScaleDowns, p.Trickle, unsettled)
	}
	return fmt.Sprintf("reset %s: %d instances stopped, %s reset from committed offsets summing %d, %d orders to partition %d past the old checkpoints, %d restarted on their old state dirs%s",
		at, p.Stopped, p.ResetBy, p.Offsets, p.Push, p.Pushed, p.Restarted, unsettled)
}

// schedulePhases plans the first idle phase and reset, each half its
// interval after the soak begins.
func (r *run) schedulePhases(begin time.Time) {
	r.begin = begin
	if r.cfg.Mode == ModeMirror {
		return // the mirror producer runs its own idle phases
	}
	if r.cfg.IdleEvery > 0 {
		r.nextIdle = begin.Add(r.cfg.IdleEvery / 2)
	}
	if r.cfg.ResetEvery > 0 {
		r.nextReset = begin.Add(r.cfg.ResetEvery / 2)
	}
}

// phaseGap is the least time between the end of a phase and the start of
// the next: production and random failures run in between, so that what a
// phase left wrong (an idle instance's stale state) shows in the events
// before a reset wipes it.
const phaseGap = 15 * time.Second

// phaseDue runs the idle phase or the reset that is due, the one due
// first, and reports whether it ran one. The next of its kind is due its
// interval after this one was due, and no phase is due until phaseGap
// after this one ended.
func (r *run) phaseDue(ctx context.Context, now, end time.Time) (bool, error) {
	if !now.Before(end) {
		return false, nil // the run is over but for the production after the last phase
	}
	idle := !r.nextIdle.IsZero() && !now.Before(r.nextIdle)
	reset := !r.nextReset.IsZero() && !now.Before(r.nextReset)
	var err error
	switch {
	case idle && (!reset || r.nextIdle.Before(r.nextReset)):
		r.nextIdle = r.nextIdle.Add(r.cfg.IdleEvery)
		err = r.idle(ctx)
	case reset:
		r.nextReset = r.nextReset.Add(r.cfg.ResetEvery)
		err = r.reset(ctx)
	default:
		return false, nil
	}
	r.phaseEnd = time.Now()
	calm := r.phaseEnd.Add(phaseGap)
	for _, next := range []*time.Time{&r.nextIdle, &r.nextReset} {
		if !next.IsZero() && next.Before(calm) {
			*next = calm
		}
	}
	return true, err
}

// record adds a finished phase to the report.
func (r *run) record(ph Phase) {
	r.st.add(func(rep *Report) { rep.Phases = append(rep.Phases, ph) })
	fmt.Fprintf(r.cfg.Out, "  phase over: %s\n", ph)
}

// idle runs an idle phase (see the top of this file). Production stops
// while it holds prodGate.
func (r *run) idle(ctx context.Context) error {
	start := time.Now()
	ph := Phase{Kind: PhaseIdle, At: start.Sub(r.begin)}
	fmt.Fprintf(r.cfg.Out, "%s: idle phase: production stops for at least %s\n", ph.At.Round(time.Second), r.cfg.IdleFor)
	r.prodGate.Lock()
	defer r.prodGate.Unlock()
	stopped := time.Now()
	if err := r.settlePending(); err != nil {
		return err
	}
	if err := r.waitDrained(ctx, &ph); err != nil {
		return err
	}
	keep := max(r.cfg.MinInstances, 1+r.rng.IntN(3)/2) // 1 twice as often as 2
	for len(r.live) > keep {
		in := r.pick()
		fmt.Fprintf(r.cfg.Out, "  idle: scale down: stop %s\n", in.id)
		if err := r.stopOne(in); err != nil {
			return err
		}
		ph.ScaleDowns++
		r.settle(ctx, &ph)
	}
	for _, in := range r.live {
		ph.Idle = append(ph.Idle, in.id)
	}
	for range r.cfg.IdleRounds {
		if err := r.idleRound(ctx, &ph); err != nil {
			return err
		}
	}
	for time.Since(stopped) < r.cfg.IdleFor {
		if err := r.housekeep(time.Now()); err != nil {
			return err
		}
		if err := exactlytest.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	ph.Took = time.Since(start)
	r.record(ph)
	return nil
}

// idleRound adds two or three instances one by one, gives their
// partitions a few orders, and stops them one by one in random order.
func (r *run) idleRound(ctx context.Context, ph *Phase) error {
	ups := min(2+r.rng.IntN(2), r.cfg.MaxInstances-len(r.live))
	var joined []*instance
	for range ups {
		if err := r.startNew(); err != nil {
			return err
		}
		in := r.live[len(r.live)-1]
		joined = append(joined, in)
		fmt.Fprintf(r.cfg.Out, "  idle: scale up: start %s\n", in.id)
		ph.ScaleUps++
		r.settle(ctx, ph)
	}
	n, err := r.trickle(ctx, joined)
	if err != nil {
		return err
	}
	ph.Trickle += n
	if err := r.waitDrained(ctx, ph); err != nil {
		return err
	}
	r.rng.Shuffle(len(joined), func(i, j int) { joined[i], joined[j] = joined[j], joined[i] })
	for _, in := range joined {
		if !slices.Contains(r.live, in) {
			continue // exited on its own and restarted: housekeep counted it
		}
		fmt.Fprintf(r.cfg.Out, "  idle: scale down: stop %s\n", in.id)
		if err := r.stopOne(in); err != nil {
			return err
		}
		ph.ScaleDowns++
		r.settle(ctx, ph)
	}
	return nil
}

// trickle produces three orders into every orders partition that one of
// joined owns, for customers of that partition, and returns how many.
func (r *run) trickle(ctx context.Context, joined []*instance) (int, error) {
	parts := make(map[int32]bool)
	assigned := r.assigned(ctx)
	for _, in := range joined {
		for _, id := range r.clientIDs(in.id) {
			for _, p := range assigned[id] {
				parts[p] = true
			}
		}
	}
	cl, err := r.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return 0, fmt.Errorf("creating the idle producer: %w", err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		customers := r.customersOf(p)
		for i := 0; i < 3 && len(customers) > 0; i++ {
			rec, err := r.extraOrder(customers[r.rng.IntN(len(customers))], p)
			if err != nil {
				return 0, err
			}
			recs = append(recs, rec)
		}
	}
	if len(recs) == 0 {
		return 0, nil
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("producing idle orders: %w", err)
	}
	r.st.add(func(rep *Report) { rep.Produced.Produced += len(recs); rep.Produced.Valid += len(recs) })
	fmt.Fprintf(r.cfg.Out, "  idle: %d orders to partitions %v of the newcomers only\n", len(recs), slices.Sorted(maps.Keys(parts)))
	return len(recs), nil
}

// customersOf returns the customer ids (as orders.Produce names them) that
// the producer's default partitioner puts in partition p.
func (r *run) customersOf(p int32) []string {
	part := kgo.StickyKeyPartitioner(nil).ForTopic(r.topics.Orders)
	var out []string
	for i := 1; i <= r.cfg.Customers; i++ {
		id := fmt.Sprintf("c-%04d", i)
		if part.Partition(&kgo.Record{Key: []byte(id)}, int(r.parts)) == int(p) {
			out = append(out, id)
		}
	}
	return out
}

// extraOrder returns a new valid order of customer for partition p, past
// the producer's: an idle phase's or a reset's.
func (r *run) extraOrder(customer string, p int32) (*kgo.Record, error) {
	r.extraOrders++
	v, err := json.Marshal(orders.Order{
		OrderID:    fmt.Sprintf("o-%d-extra-%d", r.cfg.Seed, r.extraOrders),
		CustomerID: customer, AmountCents: 1 + r.rng.Int64N(100_000), CreatedAt: time.Now(),
	})
	if err != nil {
		return nil, fmt.Errorf("encoding an idle order: %w", err)
	}
	return &kgo.Record{Topic: r.topics.Orders, Partition: p, Key: []byte(customer), Value: v}, nil
}

// reset runs an operator reset (see the top of this file).
func (r *run) reset(ctx context.Context) error {
	start := time.Now()
	ph := Phase{Kind: PhaseReset, At: start.Sub(r.begin)}
	fmt.Fprintf(r.cfg.Out, "%s: operator reset: stopping production and, once drained, every instance\n", ph.At.Round(time.Second))
	r.prodGate.Lock()
	defer r.prodGate.Unlock()
	if err := r.settlePending(); err != nil {
		return err
	}
	if err := r.waitDrained(ctx, &ph); err != nil {
		return err
	}
	stopped := slices.Clone(r.live)
	if len(stopped) == 0 {
		return nil // nothing ran to reset: impossible while MinInstances >= 1
	}
	for _, in := range stopped {
		if err := r.stopOne(in); err != nil {
			return err
		}
		ph.Stopped++
	}
	r.waitEmpty(ctx, &ph)
	offs, err := r.committed(ctx)
	if err != nil {
		return err
	}
	r.resets = append(r.resets, offs)
	for _, o := range offs {
		ph.Offsets += o
	}
	by := stopped[r.rng.IntN(len(stopped))]
	ph.ResetBy = by.id
	fmt.Fprintf(r.cfg.Out, "  reset: %s runs with --reset-state from committed offsets %v, alone for %s\n", by.id, offs, r.cfg.ResetRun)
	if err := r.startAt(by.id, by.dir, "--reset-state"); err != nil {
		return err
	}
	if err := r.waitReset(ctx, r.live[len(r.live)-1]); err != nil {
		return err
	}
	olds := r.oldDirs(stopped, by)
	end := time.Now().Add(r.cfg.ResetRun)
	if err := r.pushPast(ctx, olds, &ph); err != nil {
		return err
	}
	for time.Now().Before(end) {
		if err := r.housekeep(time.Now()); err != nil {
			return err
		}
		if err := exactlytest.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	for _, dir := range olds {
		id := filepath.Base(dir)
		fmt.Fprintf(r.cfg.Out, "  reset: restart %s on its old state dir\n", id)
		if err := r.startAt(id, dir); err != nil {
			return err
		}
		ph.Restarted++
	}
	ph.Took = time.Since(start)
	r.record(ph)
	return nil
}

// waitReset waits, at most two minutes, until in logged that its reset is
// done or exited: pushing orders past the old checkpoints means nothing
// while the old changelogs still exist.
func (r *run) waitReset(ctx context.Context, in *instance) error {
	deadline := time.Now().Add(2 * time.Minute)
	for in.resetting.Load() && !in.exited() && time.Now().Before(deadline) {
		if err := r.housekeep(time.Now()); err != nil {
			return err
		}
		if err := exactlytest.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// pushPast sends orders of one customer to one partition held in dirs
// until the new changelogs of that partition pass every checkpoint of it
// in dirs (see the top of this file).
func (r *run) pushPast(ctx context.Context, dirs []string, ph *Phase) error {
	old, err := oldCheckpoints(dirs, r.parts)
	if err != nil || len(old) == 0 {
		return err
	}
	p := slices.Sorted(maps.Keys(old))[r.rng.IntN(len(old))]
	customers := r.customersOf(p)
	if len(customers) == 0 {
		return nil
	}
	customer := customers[r.rng.IntN(len(customers))]
	ph.Pushed = p
	cl, err := r.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return fmt.Errorf("creating the reset producer: %w", err)
	}
	defer cl.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if err := r.housekeep(time.Now()); err != nil {
			return err
		}
		short, err := r.shortOf(ctx, p, old[p])
		if err != nil || short > 0 {
			if err := r.push(ctx, cl, customer, p, min(max(short, 50), 1000), ph); err != nil {
				return err
			}
			if err := r.waitDrained(ctx, ph); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(r.cfg.Out, "  reset: %d orders of %s pushed the new changelogs of partition %d past the old checkpoints %v\n", ph.Push, customer, p, old[p])
		return nil
	}
	ph.Unsettled++
	fmt.Fprintf(r.cfg.Out, "  reset: the new changelogs of partition %d did not pass the old checkpoints %v; going on\n", p, old[p])
	return nil
}

// oldCheckpoints returns, per partition, the highest changelog checkpoint
// of each order store in the (stopped) state directories dirs.
func oldCheckpoints(dirs []string, parts int32) (map[int32]map[string]int64, error) {
	out := make(map[int32]map[string]int64)
	for _, d := range dirs {
		db, err := exactlytest.OpenStateDir(d)
		if err != nil {
			return nil, fmt.Errorf("reading the checkpoints of %s: %w", d, err)
		}
		for p := range parts {
			for _, store := range orders.OrderStores() {
				off, ok, err := db.Checkpoint(store, p)
				if err != nil {
					db.Close()
					return nil, err
				}
				if !ok {
					continue
				}
				if out[p] == nil {
					out[p] = make(map[string]int64)
				}
				out[p][store] = max(out[p][store], off)
			}
		}
		if err := db.Close(); err != nil {
			return nil, fmt.Errorf("closing the state of %s: %w", d, err)
		}
	}
	return out, nil
}

// shortOf returns how many records the new changelogs of partition p lack
// to be past the checkpoints old (by store); 0 when they are past.
func (r *run) shortOf(ctx context.Context, p int32, old map[string]int64) (int64, error) {
	cl, err := r.client()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var topics []string
	for _, store := range orders.OrderStores() {
		topics = append(topics, processor.ChangelogTopic(r.group, store))
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, err
	}
	var short int64
	for _, store := range orders.OrderStores() {
		e, ok := ends.Lookup(processor.ChangelogTopic(r.group, store), p)
		if !ok {
			return 0, fmt.Errorf("no end offset of the %s changelog partition %d", store, p)
		}
		short = max(short, old[store]+2-e.Offset) // the restore starts past old[store]
	}
	return short, nil
}

// push produces n new orders of customer into partition p.
func (r *run) push(ctx context.Context, cl *kgo.Client, customer string, p int32, n int64, ph *Phase) error {
	recs := make([]*kgo.Record, 0, n)
	for range n {
		rec, err := r.extraOrder(customer, p)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("producing orders past the old checkpoints: %w", err)
	}
	ph.Push += len(recs)
	r.st.add(func(rep *Report) { rep.Produced.Produced += len(recs); rep.Produced.Valid += len(recs) })
	return nil
}

// oldDirs returns the state directories to restart instances on after a
// reset: those of the instances stopped for it, but by, and more used
// before (instances scaled down or idle-phase newcomers, at random) until
// Instances run, as far as there are any: every one of them holds state
// from before the reset.
func (r *run) oldDirs(stopped []*instance, by *instance) []string {
	var out []string
	for _, in := range stopped {
		if in != by {
			out = append(out, in.dir)
		}
	}
	var spare []string
	for _, d := range slices.Sorted(maps.Keys(r.dirs)) {
		if d != by.dir && !slices.Contains(out, d) {
			if _, err := os.Stat(d); err == nil {
				spare = append(spare, d)
			}
		}
	}
	r.rng.Shuffle(len(spare), func(i, j int) { spare[i], spare[j] = spare[j], spare[i] })
	for len(out)+1 < r.cfg.Instances && len(spare) > 0 {
		out, spare = append(out, spare[0]), spare[1:]
	}
	return out
}

// committed returns the group's committed offsets of the orders topic,
// 0 for a partition without one. It asks for stable offsets and waits out
// transactions still pending (a killed instance's, until the broker
// aborts it at its timeout).
func (r *run) committed(ctx context.Context) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var offs kadm.OffsetResponses
	for {
		var err error
		offs, err = r.fetchCommitted(ctx)
		if err == nil {
			break
		}
		// Unstable offsets wait for a transaction to end; any other
		// error is a broker that a fault killed (the coordinator's, on
		// Kafka): a new client finds the next coordinator.
		if serr := exactlytest.Sleep(ctx, 250*time.Millisecond); serr != nil {
			return nil, fmt.Errorf("fetching the group's committed offsets for the reset: %w", err)
		}
	}
	out := make(map[int32]int64, r.parts)
	for p := range r.parts {
		out[p] = 0
		if o, ok := offs.Lookup(r.topics.Orders, p); ok && o.At > 0 {
			out[p] = o.At
		}
	}
	return out, nil
}

// settleTimeout bounds each wait of a phase.
const settleTimeout = 45 * time.Second

// settle waits until the group is stable with every live instance's loops
// members and every orders partition assigned (a cooperative rebalance
// takes two rounds), then a second more for the assignment callbacks.
func (r *run) settle(ctx context.Context, ph *Phase) {
	r.waitGroup(ctx, ph, "the group to settle", func(g kadm.DescribedGroup) bool {
		if g.State != "Stable" || len(g.Members) != len(r.live)*max(r.cfg.Loops, 1) {
			return false
		}
		n := 0
		for _, ps := range assignedOf(g, r.topics.Orders) {
			n += len(ps)
		}
		return n == int(r.parts)
	})
	_ = exactlytest.Sleep(ctx, time.Second)
}

// waitEmpty waits until the group has no member.
func (r *run) waitEmpty(ctx context.Context, ph *Phase) {
	r.waitGroup(ctx, ph, "the group to empty", func(g kadm.DescribedGroup) bool { return len(g.Members) == 0 })
}

// waitGroup polls the group's description until ok, restarting instances
// that exit on their own meanwhile; after settleTimeout it counts the wait
// as unsettled and returns.
func (r *run) waitGroup(ctx context.Context, ph *Phase, what string, ok func(kadm.DescribedGroup) bool) {
	deadline := time.Now().Add(settleTimeout)
	for time.Now().Before(deadline) {
		if err := r.housekeep(time.Now()); err != nil {
			return
		}
		if g, err := r.describe(ctx); err == nil && ok(g) {
			return
		}
		if exactlytest.Sleep(ctx, 250*time.Millisecond) != nil {
			return
		}
	}
	ph.Unsettled++
	fmt.Fprintf(r.cfg.Out, "  waited %s for %s; going on\n", settleTimeout, what)
}

// waitDrained waits until the group committed every order.
func (r *run) waitDrained(ctx context.Context, ph *Phase) error {
	deadline := time.Now().Add(settleTimeout)
	for time.Now().Before(deadline) {
		if err := r.housekeep(time.Now()); err != nil {
			return err
		}
		if lag, err := r.lag(ctx); err == nil && lag == 0 {
			return nil
		}
		if err := exactlytest.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	ph.Unsettled++
	fmt.Fprintf(r.cfg.Out, "  waited %s for the pipeline to drain; going on\n", settleTimeout)
	return nil
}

// describe describes the group through a new client (see lag).
func (r *run) describe(ctx context.Context) (kadm.DescribedGroup, error) {
	cl, err := r.client()
	if err != nil {
		return kadm.DescribedGroup{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	gs, err := kadm.NewClient(cl).DescribeGroups(ctx, r.group)
	if err != nil {
		return kadm.DescribedGroup{}, err
	}
	g := gs[r.group]
	return g, g.Err
}

// assigned returns the orders partitions of every member, by client id
// (the instances use their transactional id).
func (r *run) assigned(ctx context.Context) map[string][]int32 {
	g, err := r.describe(ctx)
	if err != nil {
		return nil
	}
	return assignedOf(g, r.topics.Orders)
}

func assignedOf(g kadm.DescribedGroup, topic string) map[string][]int32 {
	out := make(map[string][]int32)
	for _, m := range g.Members {
		c, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range c.Topics {
			if t.Topic == topic {
				out[m.ClientID] = append(out[m.ClientID], t.Partitions...)
			}
		}
	}
	return out
}

// fetchCommitted fetches the group's stable committed offsets once, through
// a new client: one that cached a coordinator on a killed broker keeps
// dialing it.
func (r *run) fetchCommitted(ctx context.Context) (kadm.OffsetResponses, error) {
	cl, err := r.client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(kadm.RequireStable(fctx), r.group)
	if err == nil {
		err = offs.Error()
	}
	return offs, err
}
