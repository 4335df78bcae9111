package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/examples/enrich"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/internal/cluster"
	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/processor"
)

// Run runs a chaos soak as cfg says and returns its report. An error means
// the run could not be carried out (the cluster, the binary, the producer,
// ctx); what the checks found is in the report (Report.OK).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.ensureDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	srcOpts, err := cfg.Security.Opts()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	tgtOpts, err := cfg.TargetSecurity.Opts()
	if err != nil {
		return nil, fmt.Errorf("%w: target: %w", ErrConfig, err)
	}
	r := &run{
		cfg:   &cfg,
		rng:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6368616f73)),
		st:    &stats{},
		dirs:  make(map[string]bool),
		group: cfg.TopicPrefix + orders.DefaultOrderGroup,
		opts:  srcOpts,
	}
	r.topics = orders.TopicsWithPrefix(cfg.TopicPrefix)
	r.st.r = Report{Mode: cfg.Mode, Seed: cfg.Seed, Duration: cfg.Duration, Rate: cfg.Rate, Generations: -1, Aborts: make(map[string]int)}
	if cfg.Mode == ModeMirror {
		r.group = cfg.TopicPrefix + "chaos-mirror"
		r.mirror = &mirrorRun{name: r.group, ledger: newLedger(), topts: tgtOpts}
		r.st.r.Mirror = &MirrorReport{Name: r.group}
	}
	if cfg.Mode == ModeRevenue {
		r.revenueTopics()
	}
	if cfg.Mode == ModeEnrich {
		r.enrichTopics()
	}
	// Shutdown, in order: the instances (SIGKILL whatever still runs,
	// then reap), the producer and broker restarts, the clients, the
	// embedded cluster, the state directories.
	defer r.close()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	if err := r.soak(ctx); err != nil {
		return nil, err
	}
	return r.check(ctx)
}

// run is one chaos run. Its fields are owned by the goroutine running Run,
// except st and the producer's fields under prodMu.
type run struct {
	cfg    *Config
	rng    *rand.Rand
	st     *stats
	topics orders.Topics
	group  string

	kfake   *kfake.Cluster // nil on a real cluster; the source in mirror mode
	kafka   *cluster.Cluster
	brokers []string
	opts    []kgo.Opt // Security's, for every client of the cluster
	adminCl *kgo.Client
	admin   *kadm.Client
	parts   int32

	root    string
	ownRoot bool
	fleet   *fleet
	live    []*instance
	dirs    map[string]bool // every state directory used
	pending []timed         // what is due later: restarts, thaws
	faults  *faulter
	gen     atomic.Int32
	down    atomic.Bool // a broker is down

	wg       sync.WaitGroup // the producer and broker restarts
	prodStop chan struct{}
	prodMu   sync.Mutex
	prodErr  error
	// prodGate is held by the producer while it writes a chunk, and by an
	// idle phase or a reset while production stops.
	prodGate sync.Mutex

	begin       time.Time         // of the soak
	nextIdle    time.Time         // zero: idle phases disabled
	nextReset   time.Time         // zero: resets disabled
	phaseEnd    time.Time         // when the last phase ended
	resets      []map[int32]int64 // committed offsets at each reset
	extraOrders int               // orders produced by phases, for ids

	mirror *mirrorRun  // mirror mode only
	rev    *revenueRun // revenue mode only
	enr    *enrichRun  // enrich mode only
}

// timed is an action due at a time.
type timed struct {
	at      time.Time
	restart bool // it starts an instance
	do      func() error
}

func (r *run) setup(ctx context.Context) error {
	clusters := r.cluster
	if r.mirror != nil {
		clusters = r.mirrorClusters
	}
	if err := clusters(ctx); err != nil {
		return err
	}
	r.root = r.cfg.StateDir
	if r.root == "" {
		root, err := os.MkdirTemp("", "exactly-chaos-")
		if err != nil {
			return fmt.Errorf("creating the state directory: %w", err)
		}
		r.root, r.ownRoot = root, true
	}
	r.fleet = &fleet{cfg: r.cfg, brokers: strings.Join(r.brokers, ","), stats: r.st}
	if r.mirror != nil {
		r.fleet.targetBrokers, r.fleet.mirrorName, r.fleet.mirrorTopics = strings.Join(r.mirror.tbrokers, ","), r.mirror.name, r.mirror.topics
		r.st.r.Mirror.Topics = r.mirror.topics
	}
	fmt.Fprintf(r.cfg.Out, "chaos: seed %d (replay the choices with --seed %d); %s; state in %s\n", r.cfg.Seed, r.cfg.Seed, r.st.r.Cluster, r.root)
	for range r.cfg.Instances {
		if err := r.startNew(); err != nil {
			return err
		}
	}
	return nil
}

// client returns a client of the cluster (the source in mirror mode),
// secured as Config.Security says, with opts added.
func (r *run) client(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(slices.Concat([]kgo.Opt{kgo.SeedBrokers(r.brokers...)}, r.opts, opts)...)
}

// reach waits at most a minute for one of cl's brokers to answer. A
// broker that refuses cl's credentials or certificate fails it at once
// with a *kafkaauth.AuthError naming the mechanism and the broker.
func reach(ctx context.Context, cl *kgo.Client, brokers []string) error {
	if err := app.WaitForBroker(ctx, cl, time.Minute); err != nil {
		if kafkaauth.IsAuthFailure(err) {
			return err
		}
		return fmt.Errorf("no broker reachable at %s: %w", strings.Join(brokers, ","), err)
	}
	return ctx.Err()
}

// cluster starts the embedded kfake cluster or connects to Brokers, and
// creates the orders and events topics.
func (r *run) cluster(ctx context.Context) error {
	if len(r.cfg.Brokers) == 0 {
		c, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			return fmt.Errorf("starting the embedded cluster: %w", err)
		}
		r.kfake, r.brokers = c, c.ListenAddrs()
		r.st.r.Cluster = "embedded kfake (3 brokers)"
		r.st.r.Generations = 0
		c.ControlKey(int16(kmsg.SyncGroup), r.observeGeneration)
		c.ControlKey(int16(kmsg.JoinGroup), capRebalanceTimeout)
	} else {
		r.brokers = r.cfg.Brokers
		r.st.r.Cluster = strings.Join(r.brokers, ",")
	}
	if r.cfg.KafkaDir != "" {
		k, err := cluster.Open(r.cfg.KafkaDir)
		if err != nil {
			return fmt.Errorf("opening the Kafka run directory: %w", err)
		}
		r.kafka = k
	}
	cl, err := r.client()
	if err != nil {
		return fmt.Errorf("connecting to %v: %w", r.brokers, err)
	}
	r.adminCl, r.admin = cl, kadm.NewClient(cl)
	if err := reach(ctx, cl, r.brokers); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, t := range []string{r.topics.Orders, r.topics.Events} {
		resp, err := r.admin.CreateTopic(cctx, r.cfg.Partitions, -1, nil, t)
		if err == nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	if r.enr != nil {
		// The table's topic: compacted, co-partitioned with the orders.
		t := r.cfg.TopicPrefix + enrich.TopicCustomers
		resp, err := r.admin.CreateTopic(cctx, r.cfg.Partitions, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, t)
		if err == nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	orders, err := describeCreated(cctx, r.admin, r.topics.Orders)
	if err != nil {
		return err
	}
	r.parts = int32(len(orders.Partitions))
	if r.kfake != nil && !r.cfg.NoFaults {
		evs, err := describeCreated(cctx, r.admin, r.topics.Events)
		if err != nil {
			return err
		}
		r.faults = &faulter{c: r.kfake, topics: []string{r.topics.Events}, topicIDs: [][16]byte{evs.ID}}
		r.st.r.Faults = make(map[string]int)
	}
	return nil
}

// describeCreated describes a topic just created, asking again while the
// broker that answers does not know it yet (a real cluster's brokers learn
// of a new topic from the controller a moment after it is created), until
// ctx ends.
func describeCreated(ctx context.Context, adm *kadm.Client, topic string) (kadm.TopicDetail, error) {
	for {
		ts, err := adm.ListTopics(ctx, topic)
		if err == nil {
			err = ts[topic].Err
		}
		if err == nil {
			return ts[topic], nil
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || ctx.Err() != nil {
			return kadm.TopicDetail{}, fmt.Errorf("describing topic %s: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return kadm.TopicDetail{}, fmt.Errorf("describing topic %s: %w", topic, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// observeGeneration is a kfake control that only watches SyncGroup
// requests for the group's generation.
func (r *run) observeGeneration(req kmsg.Request) (kmsg.Response, error, bool) {
	if sg, ok := req.(*kmsg.SyncGroupRequest); ok && sg.Group == r.group {
		for {
			g := r.gen.Load()
			if sg.Generation <= g || r.gen.CompareAndSwap(g, sg.Generation) {
				break
			}
		}
	}
	return nil, nil, false
}

// capRebalanceTimeout is a kfake control that lowers the rebalance timeout
// of every JoinGroup to 10 s, then lets the cluster handle the request.
// kfake waits out the whole rebalance timeout (kgo's default: 60 s) for a
// member that died while waiting in JoinGroup, and restarts that wait at
// every membership change, where Kafka removes such a member at its
// session timeout; under chaos's kills the group would stall for minutes.
// Instances still inside their assignment callback (a restore) after 10 s
// of a rebalance leave the group, as they would on Kafka with that timeout.
func capRebalanceTimeout(req kmsg.Request) (kmsg.Response, error, bool) {
	if j, ok := req.(*kmsg.JoinGroupRequest); ok && j.RebalanceTimeoutMillis > 10_000 {
		j.RebalanceTimeoutMillis = 10_000
	}
	return nil, nil, false
}

// evictLater works around a kfake bug: a member whose process died while
// its JoinGroup or SyncGroup waited for the rebalance never gets a session
// timer (kfake's group.reply returns before updateHeartbeat when the reply
// cannot be written), so it stays in the group for good, holding its
// partitions (the group stalls: Stable, a partition nobody consumes) or
// making every rebalance wait out the rebalance timeout. Kafka expires it
// at its session timeout. So, on kfake, the members of a dead instance
// that are still there after the session timeout (6 s) and a margin are
// removed with a LeaveGroup naming them, and counted in the report.
func (r *run) evictLater(in *instance) {
	if r.kfake == nil {
		return
	}
	in.waitExit(10 * time.Second)
	var dead []string
	for _, id := range r.clientIDs(in.id) {
		dead = append(dead, r.members(id)...)
	}
	if len(dead) == 0 {
		return
	}
	r.pending = append(r.pending, timed{time.Now().Add(8 * time.Second), false, func() error {
		r.evict(dead)
		return nil
	}})
}

// clientIDs returns the client ids of an instance's group members: its
// transactional ids, one per loop (processor.Loops).
func (r *run) clientIDs(id string) []string {
	out := []string{r.group + "-" + id}
	for i := 1; i < r.cfg.Loops; i++ {
		out = append(out, fmt.Sprintf("%s-%s-loop-%d", r.group, id, i))
	}
	return out
}

// members returns the member ids of the group's members with client id
// clientID (the instances use their transactional id).
func (r *run) members(clientID string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gs, err := r.admin.DescribeGroups(ctx, r.group)
	if err != nil {
		return nil
	}
	var ids []string
	for _, m := range gs[r.group].Members {
		if m.ClientID == clientID {
			ids = append(ids, m.MemberID)
		}
	}
	return ids
}

// evict removes the members among ids that are still in the group.
func (r *run) evict(ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gs, err := r.admin.DescribeGroups(ctx, r.group)
	if err != nil {
		return
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = r.group
	for _, m := range gs[r.group].Members {
		if slices.Contains(ids, m.MemberID) {
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = m.MemberID
			req.Members = append(req.Members, lm)
		}
	}
	if len(req.Members) == 0 {
		return
	}
	if _, err := req.RequestWith(ctx, r.adminCl); err != nil {
		r.cfg.Logger.Debug("evicting stale members", "err", err)
		return
	}
	fmt.Fprintf(r.cfg.Out, "  kfake: evicted %d stale member(s) of a dead instance\n", len(req.Members))
	r.st.add(func(rep *Report) { rep.Evicted += len(req.Members) })
}

// startNew starts an instance with a new id.
func (r *run) startNew() error {
	r.fleet.n++
	id := fmt.Sprintf("chaos-%d", r.fleet.n)
	return r.startAt(id, filepath.Join(r.root, id))
}

// startAt starts instance id on dir with a random transaction size and
// commit interval, and further arguments extra.
func (r *run) startAt(id, dir string, extra ...string) error {
	maxRecords := []int{50, 200, 500, 1000}[r.rng.IntN(4)]
	interval := []time.Duration{20, 50, 100, 250}[r.rng.IntN(4)] * time.Millisecond
	in, err := r.fleet.start(id, dir, maxRecords, interval, extra...)
	if err != nil {
		return err
	}
	r.dirs[dir] = true
	r.live = append(r.live, in)
	r.cfg.Logger.Debug("started instance", "id", id, "max_records", maxRecords, "commit_interval", interval)
	return nil
}

// soak produces orders and injects failures for the configured duration,
// with idle and reset phases when due, then lets the pipeline drain and
// stops every instance cleanly.
func (r *run) soak(ctx context.Context) error {
	switch {
	case r.mirror != nil:
		r.startMirrorProducer()
	case r.rev != nil:
		r.startRevenueProducer()
	case r.enr != nil:
		r.startEnrichProducer()
	default:
		r.startProducer()
	}
	begin := time.Now()
	r.schedulePhases(begin)
	if r.rev != nil || r.enr != nil {
		// The revenue and enrich producers run their own idle phases,
		// as the mirror's.
		r.nextIdle, r.nextReset = time.Time{}, time.Time{}
	}
	end := begin.Add(r.cfg.Duration)
	next := begin.Add(r.interval())
	lastProgress := begin
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	// A phase is followed by at least phaseGap of production, the run's
	// end included: what a phase left stale shows in the events, and after
	// a reset every partition has input past the reset offsets (E4 ranks
	// state directories by input checkpoint).
	for now := time.Now(); now.Before(end) || now.Before(r.phaseEnd.Add(phaseGap)); now = time.Now() {
		if err := r.housekeep(now); err != nil {
			return err
		}
		ran, err := r.phaseDue(ctx, now, end)
		if err != nil {
			return err
		}
		if ran {
			next = time.Now().Add(r.interval())
			continue
		}
		if !now.Before(next) {
			if err := r.failure(); err != nil {
				return err
			}
			next = now.Add(r.interval())
		}
		if now.Sub(lastProgress) >= 5*time.Second {
			if r.mirror != nil {
				r.mirrorProgress(ctx, now.Sub(begin))
			} else {
				r.progress(ctx, now.Sub(begin))
			}
			lastProgress = now
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if err := r.calm(ctx); err != nil {
		return err
	}
	drain := r.drain
	if r.mirror != nil {
		drain = r.mirrorDrain
	}
	if r.rev != nil {
		drain = r.revenueDrain
	}
	if err := drain(ctx); err != nil {
		return err
	}
	return r.stopAll()
}

// interval draws the time to the next failure: EventInterval on average.
func (r *run) interval() time.Duration {
	return time.Duration((0.5 + r.rng.Float64()) * float64(r.cfg.EventInterval))
}

// housekeep runs what is due and notices instances that stopped on their
// own: each is a violation, and is restarted so that the run goes on.
func (r *run) housekeep(now time.Time) error {
	due := r.pending[:0:0]
	for _, p := range r.pending {
		if now.Before(p.at) {
			due = append(due, p)
			continue
		}
		if err := p.do(); err != nil {
			return err
		}
	}
	r.pending = due
	for _, in := range slices.Clone(r.live) {
		if !in.exited() || in.signalled {
			continue
		}
		msg := fmt.Sprintf("%s: %s: %s", in.id, in.cmd.ProcessState, in.lastErr)
		if r.mirror != nil && in.cmd.ProcessState.ExitCode() == 1 {
			// The mirror stops by design on an unknown commit outcome
			// or a fence (see mirror.go in this package): restart it.
			fmt.Fprintf(r.cfg.Out, "  %s stopped on an error; restarting it\n", msg)
			r.st.add(func(rep *Report) { rep.Mirror.Exits = append(rep.Mirror.Exits, msg) })
			r.remove(in)
			if err := r.startAt(in.id, in.dir); err != nil {
				return err
			}
			continue
		}
		// Every failure injected here is one an instance must ride out,
		// a zombie fenced by its transaction timeout included.
		fmt.Fprintf(r.cfg.Out, "  unexpected exit of %s\n", msg)
		r.st.add(func(rep *Report) { rep.UnexpectedExits = append(rep.UnexpectedExits, msg) })
		r.remove(in)
		var extra []string
		if in.resetting.Load() {
			// A reset stopped half way leaves changelogs without offset
			// records: an operator runs it again (processor.ResetState).
			fmt.Fprintf(r.cfg.Out, "  %s exited before its reset was done: restarting it with --reset-state\n", in.id)
			extra = []string{"--reset-state"}
		}
		if err := r.startAt(in.id, in.dir, extra...); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) remove(in *instance) {
	r.live = slices.DeleteFunc(r.live, func(o *instance) bool { return o == in })
}

// active returns the live instances that are not frozen.
func (r *run) active() []*instance {
	var out []*instance
	for _, in := range r.live {
		if !in.paused && !in.exited() {
			out = append(out, in)
		}
	}
	return out
}

// failure injects one random failure among those possible now.
func (r *run) failure() error {
	type choice struct {
		weight int
		do     func() error
	}
	active := r.active()
	var cs []choice
	if len(active) > 0 {
		cs = append(cs, choice{3, r.kill}, choice{1, r.restart})
	}
	if len(active) >= 2 && len(active) == len(r.live) {
		cs = append(cs, choice{1, r.pause})
	}
	if len(r.live)+r.restartsPending() < r.cfg.MaxInstances {
		cs = append(cs, choice{1, r.scaleUp})
	}
	if len(active) > r.cfg.MinInstances {
		cs = append(cs, choice{1, r.scaleDown})
	}
	if r.faults != nil && len(active) > 0 && r.mirror != nil {
		cs = append(cs, choice{3, r.mirrorFault})
	} else if r.faults != nil && len(active) > 0 {
		cs = append(cs, choice{3, r.fault})
	}
	if r.kafka != nil && !r.down.Load() {
		cs = append(cs, choice{1, r.killBroker})
	}
	total := 0
	for _, c := range cs {
		total += c.weight
	}
	if total == 0 {
		return nil
	}
	n := r.rng.IntN(total)
	for _, c := range cs {
		if n < c.weight {
			return c.do()
		}
		n -= c.weight
	}
	return nil
}

func (r *run) pick() *instance {
	a := r.active()
	return a[r.rng.IntN(len(a))]
}

func (r *run) restartsPending() int {
	n := 0
	for _, p := range r.pending {
		if p.restart {
			n++
		}
	}
	return n
}

// kill SIGKILLs an instance and restarts it 0.5-3 s later on the same
// directory, or one time in five on a wiped one.
func (r *run) kill() error {
	in := r.pick()
	wipe := r.rng.IntN(5) == 0 && r.mirror == nil // a mirror has no state directory
	after := time.Duration(500+r.rng.IntN(2500)) * time.Millisecond
	in.signalled = true
	in.signal(syscall.SIGKILL)
	r.remove(in)
	r.st.add(func(rep *Report) { rep.Killed++ })
	r.evictLater(in)
	fmt.Fprintf(r.cfg.Out, "  SIGKILL %s; restart in %s%s\n", in.id, after.Round(time.Millisecond), map[bool]string{true: " on a wiped state dir"}[wipe])
	r.pending = append(r.pending, timed{time.Now().Add(after), true, func() error {
		in.waitExit(time.Minute)
		if wipe {
			if err := os.RemoveAll(in.dir); err != nil {
				return fmt.Errorf("wiping %s: %w", in.dir, err)
			}
			r.st.add(func(rep *Report) { rep.WipedRestarts++ })
		}
		return r.startAt(in.id, in.dir)
	}})
	return nil
}

// restart stops an instance cleanly and starts it again at once.
func (r *run) restart() error {
	in := r.pick()
	fmt.Fprintf(r.cfg.Out, "  restart %s cleanly\n", in.id)
	if err := r.stopOne(in); err != nil {
		return err
	}
	r.st.add(func(rep *Report) { rep.Stopped++ })
	return r.startAt(in.id, in.dir)
}

// pause freezes an instance past its session timeout (6 s) and thaws it
// 7-10 s later (see freezeFor): a zombie whose partitions moved on, and
// whose transaction timed out (5 s) if one was open.
func (r *run) pause() error {
	in := r.pick()
	after := r.freezeFor()
	in.signal(syscall.SIGSTOP)
	in.paused = true
	fmt.Fprintf(r.cfg.Out, "  SIGSTOP %s for %s\n", in.id, after.Round(time.Millisecond))
	r.pending = append(r.pending, timed{time.Now().Add(after), false, func() error {
		r.thaw(in)
		return nil
	}})
	return nil
}

func (r *run) thaw(in *instance) {
	if in.paused {
		in.signal(syscall.SIGCONT)
		in.paused = false
		r.st.add(func(rep *Report) { rep.Paused++ })
	}
}

func (r *run) scaleUp() error {
	r.st.add(func(rep *Report) { rep.ScaledUp++ })
	fmt.Fprintf(r.cfg.Out, "  scale up to %d\n", len(r.live)+1)
	return r.startNew()
}

func (r *run) scaleDown() error {
	in := r.pick()
	fmt.Fprintf(r.cfg.Out, "  scale down: stop %s\n", in.id)
	r.st.add(func(rep *Report) { rep.ScaledDown++ })
	return r.stopOne(in)
}

// fault arms a kfake fault for one instance, or for all.
func (r *run) fault() error {
	txnID := ""
	if r.rng.IntN(2) == 0 {
		txnID = r.group + "-" + r.pick().id
	}
	name := r.faults.inject(r.rng, txnID)
	who := "any instance"
	if txnID != "" {
		who = txnID
	}
	fmt.Fprintf(r.cfg.Out, "  fault %s for %s\n", name, who)
	return nil
}

// killBroker kills a random broker and restarts it 5-15 s later.
func (r *run) killBroker() error {
	nodes := r.kafka.Nodes()
	node := nodes[r.rng.IntN(len(nodes))]
	after := time.Duration(5000+r.rng.IntN(10000)) * time.Millisecond
	if err := r.kafka.Kill(node); err != nil {
		return err
	}
	r.down.Store(true)
	r.st.add(func(rep *Report) { rep.BrokerKills++ })
	fmt.Fprintf(r.cfg.Out, "  kill broker %d; restart in %s\n", node, after.Round(time.Millisecond))
	r.wg.Go(func() {
		<-time.After(after) // the broker stays down this long: part of the failure
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := r.kafka.Start(ctx, node); err != nil {
			r.failProducer(fmt.Errorf("restarting broker %d: %w", node, err))
		}
		r.down.Store(false)
	})
	return nil
}

// stopOne stops an instance with SIGTERM; it must exit 0.
func (r *run) stopOne(in *instance) error {
	in.signalled = true
	in.signal(syscall.SIGTERM)
	r.remove(in)
	if !in.waitExit(r.cfg.StopTimeout) {
		// SIGQUIT makes the Go runtime print every goroutine's stack
		// (into the instance's log) and exit: where it hangs.
		in.signal(syscall.SIGQUIT)
		if !in.waitExit(10 * time.Second) {
			in.signal(syscall.SIGKILL)
			in.waitExit(time.Minute)
		}
		r.evictLater(in)
		if in.raceExit {
			// The dump shows main in os.Exit, inside the race
			// detector's runtime.racefini: the instance had shut
			// down and was exiting; the race runtime's exit is what
			// hung (seen with race-built instances, not with plain
			// builds). Reported, not a violation.
			r.st.add(func(rep *Report) { rep.RaceExitHangs = append(rep.RaceExitHangs, in.id) })
			fmt.Fprintf(r.cfg.Out, "  %s shut down but its exit hung in the race detector's runtime (racefini) for %s\n", in.id, r.cfg.StopTimeout)
			return nil
		}
		r.st.add(func(rep *Report) { rep.SlowStops = append(rep.SlowStops, in.id) })
		fmt.Fprintf(r.cfg.Out, "  %s did not stop within %s of SIGTERM: SIGQUIT\n%s", in.id, r.cfg.StopTimeout, in.hangReport(200))
		return nil
	}
	if ws, _ := in.cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() && ws.Signal() == syscall.SIGTERM {
		return nil // it had not yet installed its signal handler: as safe as a crash
	}
	if code := in.cmd.ProcessState.ExitCode(); code == 1 && r.mirror != nil {
		// The mirror's last round failed to commit (fenced, or its
		// outcome unknown): it stops with an error by design, SIGTERM
		// or not; the verdict says whether that cost anything.
		msg := fmt.Sprintf("%s: exit status 1 after SIGTERM: %s", in.id, in.lastErr)
		r.st.add(func(rep *Report) { rep.Mirror.Exits = append(rep.Mirror.Exits, msg) })
		return nil
	}
	if code := in.cmd.ProcessState.ExitCode(); code != 0 {
		msg := fmt.Sprintf("%s: exit status %d after SIGTERM: %s", in.id, code, in.lastErr)
		fmt.Fprintf(r.cfg.Out, "  unexpected exit of %s\n", msg)
		r.st.add(func(rep *Report) { rep.UnexpectedExits = append(rep.UnexpectedExits, msg) })
	}
	return nil
}

// calm ends the failures: faults disarmed, brokers back, zombies thawed,
// killed instances restarted, enough instances, production stopped.
func (r *run) calm(ctx context.Context) error {
	fmt.Fprintln(r.cfg.Out, "chaos over: disarming faults, restarting what is down, stopping production")
	if r.faults != nil {
		r.faults.stop()
	}
	if err := r.settlePending(); err != nil {
		return err
	}
	for len(r.live) < r.cfg.MinInstances {
		if err := r.startNew(); err != nil {
			return err
		}
	}
	close(r.prodStop)
	r.wg.Wait() // the producer's last chunk, broker restarts
	r.prodMu.Lock()
	defer r.prodMu.Unlock()
	return r.prodErr
}

// settlePending thaws every frozen instance and runs what is due later
// (restarts, evictions) now.
func (r *run) settlePending() error {
	for _, in := range r.live {
		r.thaw(in)
	}
	for _, p := range r.pending {
		if err := p.do(); err != nil {
			return err
		}
	}
	r.pending = nil
	return nil
}

// drain waits until the group committed every order, restarting any
// instance that stops on its own meanwhile.
func (r *run) drain(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	var last error
	for {
		if err := r.housekeep(time.Now()); err != nil {
			return err
		}
		lag, err := r.lag(ctx)
		if err == nil && lag == 0 {
			fmt.Fprintln(r.cfg.Out, "drained: every order committed")
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			r.describeStall(ctx)
			r.dumpAll()
			return fmt.Errorf("the pipeline did not drain within %s: lag %d (last error: %v); the instances' goroutines are shown above", r.cfg.DrainTimeout, lag, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// describeStall prints, for a pipeline that does not drain, each
// partition's lag and the group's members with their assignments.
func (r *run) describeStall(ctx context.Context) {
	cl, err := r.client()
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lags, err := adm.Lag(ctx, r.group)
	if err != nil {
		fmt.Fprintf(r.cfg.Out, "  describing the group: %v\n", err)
		return
	}
	for _, gl := range lags {
		fmt.Fprintf(r.cfg.Out, "  group %s: state %s, %d members\n", gl.Group, gl.State, len(gl.Members))
		for _, m := range gl.Members {
			assigned, _ := m.Assigned.AsConsumer()
			var parts []string
			if assigned != nil {
				for _, t := range assigned.Topics {
					parts = append(parts, fmt.Sprintf("%s%v", t.Topic, t.Partitions))
				}
			}
			fmt.Fprintf(r.cfg.Out, "    member %s (%s): %s\n", m.MemberID, m.ClientID, strings.Join(parts, " "))
		}
		for _, l := range gl.Lag.Sorted() {
			fmt.Fprintf(r.cfg.Out, "    %s[%d] committed %d end %d lag %d err %v\n", l.Topic, l.Partition, l.Commit.At, l.End.Offset, l.Lag, l.Err)
		}
	}
}

// dumpAll makes every live instance print its goroutines (SIGQUIT) into
// its log and exit, and shows where each hangs (see hangReport).
func (r *run) dumpAll() {
	for _, in := range r.live {
		in.signalled = true
		in.signal(syscall.SIGQUIT)
	}
	for _, in := range r.live {
		if in.waitExit(10 * time.Second) {
			fmt.Fprint(r.cfg.Out, in.hangReport(120))
		}
	}
}

// lag returns the orders the group has not committed, asking through a
// new client: one that cached a coordinator on a killed broker keeps
// dialing it.
func (r *run) lag(ctx context.Context) (int64, error) {
	cl, err := r.client()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, r.topics.Orders)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, err
	}
	offs, err := adm.FetchOffsets(ctx, r.group)
	if err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		if c, ok := offs.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			lag += o.Offset - c.At
		} else {
			lag += o.Offset
		}
	})
	return lag, nil
}

func (r *run) progress(ctx context.Context, elapsed time.Duration) {
	lag, err := r.lag(ctx)
	r.st.mu.Lock()
	produced := r.st.r.Produced.Produced
	if r.st.r.Revenue != nil {
		produced = r.st.r.Revenue.Sales
	}
	if r.st.r.Enrich != nil {
		produced = r.st.r.Enrich.Orders
	}
	r.st.mu.Unlock()
	if err != nil {
		fmt.Fprintf(r.cfg.Out, "%s: produced %d, %d instances (lag unknown: %v)\n", elapsed.Round(time.Second), produced, len(r.live), err)
		return
	}
	fmt.Fprintf(r.cfg.Out, "%s: produced %d, lag %d, %d instances\n", elapsed.Round(time.Second), produced, lag, len(r.live))
}

// stopAll stops every instance cleanly.
func (r *run) stopAll() error {
	for _, in := range slices.Clone(r.live) {
		if err := r.stopOne(in); err != nil {
			return err
		}
	}
	return nil
}

// check verifies E1-E3 and E5 on the topics (changelog included) and E4 on
// every state directory used, and completes the report.
func (r *run) check(ctx context.Context) (*Report, error) {
	if r.mirror != nil {
		return r.mirrorCheck(ctx)
	}
	if r.rev != nil {
		return r.revenueCheck(ctx)
	}
	if r.enr != nil {
		return r.enrichCheck(ctx)
	}
	opts := r.topics.VerifyOptions(false)
	for _, store := range orders.OrderStores() {
		opts.StableTopics = append(opts.StableTopics, processor.ChangelogTopic(r.group, store))
	}
	opts.StableWait = 15 * time.Second
	opts.Resets = r.resets
	cl, err := r.client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rep, err := orders.Verify(ctx, cl, opts)
	if err != nil {
		return nil, fmt.Errorf("verifying: %w", err)
	}
	var dirs []string
	for d := range r.dirs {
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	var lopts orders.LocalStateOptions
	if len(r.resets) > 0 {
		// A directory last used before a reset may hold a higher
		// checkpoint of the deleted changelog than the current owner.
		lopts.InputTopic = r.topics.Orders
	}
	local, err := orders.CheckLocalStateWith(dirs, r.parts, rep.Expected, lopts)
	if err != nil {
		return nil, fmt.Errorf("checking local state: %w", err)
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	out := r.st.r
	out.Verify, out.LocalState = rep, local
	if r.kfake != nil {
		out.Generations = r.gen.Load()
	}
	if r.faults != nil {
		out.Faults = r.faults.injected()
	}
	return &out, nil
}

// close kills what still runs and releases everything, in reverse order of
// setup.
func (r *run) close() {
	for _, in := range r.live {
		in.signal(syscall.SIGCONT)
		in.signal(syscall.SIGKILL)
	}
	if r.fleet != nil {
		r.fleet.wg.Wait()
	}
	if r.prodStop != nil {
		select {
		case <-r.prodStop:
		default:
			close(r.prodStop)
		}
	}
	r.wg.Wait()
	if r.adminCl != nil {
		r.adminCl.Close()
	}
	if r.kfake != nil {
		r.kfake.Close()
	}
	if m := r.mirror; m != nil {
		if m.tcl != nil {
			m.tcl.Close()
		}
		if m.tkfake != nil {
			m.tkfake.Close()
		}
	}
	if r.ownRoot {
		_ = os.RemoveAll(r.root)
	}
}

// startProducer produces orders at the configured rate, one second's worth
// per call of orders.Produce (each with its own seed, so order ids stay
// unique), until calm closes prodStop.
func (r *run) startProducer() {
	r.prodStop = make(chan struct{})
	r.wg.Go(func() {
		cl, err := r.client()
		if err != nil {
			r.failProducer(err)
			return
		}
		defer cl.Close()
		for i := int64(0); ; i++ {
			select {
			case <-r.prodStop:
				return
			default:
			}
			r.prodGate.Lock() // an idle phase holds it while production stops
			st, err := orders.Produce(context.Background(), cl, orders.ProduceConfig{
				Count: r.cfg.Rate, Customers: r.cfg.Customers, Rate: r.cfg.Rate,
				MalformedShare: 0.02, DuplicateShare: 0.02, Seed: r.cfg.Seed*100_000 + i, Topic: r.topics.Orders,
			})
			r.prodGate.Unlock()
			r.st.add(func(rep *Report) {
				p := &rep.Produced
				p.Produced, p.Valid, p.Malformed, p.Duplicates = p.Produced+st.Produced, p.Valid+st.Valid, p.Malformed+st.Malformed, p.Duplicates+st.Duplicates
			})
			if err != nil {
				r.failProducer(fmt.Errorf("producing orders: %w", err))
				return
			}
		}
	})
}

// failProducer records the first error of the producer or of a broker
// restart; calm returns it.
func (r *run) failProducer(err error) {
	r.prodMu.Lock()
	defer r.prodMu.Unlock()
	if r.prodErr == nil {
		r.prodErr = err
	}
}
