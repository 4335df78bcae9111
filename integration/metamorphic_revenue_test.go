package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/revenue"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// The revenue metamorphic test's input: revProducts products sold at
// revTills tills, revPresentSales sales in the present minute, then
// revFuture future minutes of revSalesPerMinute sales each.
const (
	revRuns           = 3
	revProducts       = 8
	revTills          = 6
	revPresentSales   = 150
	revFuture         = 5
	revSalesPerMinute = 120
	revPartitions     = 4
	revFutureAhead    = 20 * time.Minute
)

// revInput is the input every run gets: the same sales at the same times.
type revInput struct {
	present time.Time // the present minute's start
	future  time.Time // the first future minute's start
	steps   [][]revSale
}

// revSale is a sale and the till it is keyed by.
type revSale struct {
	till string
	sale revenue.Sale
}

// newRevInput draws the sales: step 0 in the present minute, steps 1..
// in the future minutes, one minute each; about one sale in 40 invalid.
// Every product sells in every future minute, so that each minute but the
// last closes on stream time in every task that has sales.
func newRevInput(rng *rand.Rand, present time.Time) revInput {
	// The future minutes must stay ahead of the wall clock for the whole
	// test (the wall-clock punctuator would close them), and within an
	// hour of it: Kafka 4 refuses records stamped further ahead
	// (log.message.timestamp.after.max.ms, one hour by default), and the
	// repartitioned sales carry the sale's time.
	in := revInput{present: present, future: present.Add(revFutureAhead)}
	sale := func(start time.Time, product int) revSale {
		s := revenue.Sale{Product: fmt.Sprintf("product-%d", product), AmountCents: 1 + rng.Int64N(5000),
			Time: start.Add(time.Duration(rng.Int64N(int64(revenue.Window))))}
		if rng.IntN(40) == 0 {
			s.AmountCents = -s.AmountCents
		}
		return revSale{till: fmt.Sprintf("till-%d", rng.IntN(revTills)), sale: s}
	}
	var step []revSale
	for range revPresentSales {
		step = append(step, sale(present, rng.IntN(revProducts)))
	}
	in.steps = append(in.steps, step)
	for k := range revFuture {
		start := in.future.Add(time.Duration(k) * revenue.Window)
		step = nil
		for i := range revSalesPerMinute {
			step = append(step, sale(start, i%revProducts))
		}
		rng.Shuffle(len(step), func(i, j int) { step[i], step[j] = step[j], step[i] })
		in.steps = append(in.steps, step)
	}
	return in
}

// revRun is the random configuration of one run.
type revRun struct {
	maxRecords     int
	commitInterval time.Duration
	instances      int  // in process
	child          bool // one more instance as a child process, which kills SIGKILL
	idleActions    []string
	actions        map[int][]string // future step -> actions right after its sales are produced
}

func (m revRun) String() string {
	var acts []string
	for _, k := range slices.Sorted(maps.Keys(m.actions)) {
		acts = append(acts, fmt.Sprintf("%d:%s", k, strings.Join(m.actions[k], ",")))
	}
	return fmt.Sprintf("%d instances + child %v, max records %d, commit interval %s, idle actions %v, actions %s",
		m.instances, m.child, m.maxRecords, m.commitInterval, m.idleActions, strings.Join(acts, " "))
}

func randomRevRun(rng *rand.Rand) revRun {
	m := revRun{
		maxRecords:     1 + rng.IntN(300),
		commitInterval: time.Duration(5+rng.IntN(295)) * time.Millisecond,
		instances:      rng.IntN(3),
		child:          true,
		actions:        make(map[int][]string),
	}
	if m.instances > 0 {
		m.child = rng.IntN(4) != 0
	}
	kinds := []string{"restart", "add", "remove"}
	if m.child {
		kinds = append(kinds, "kill", "kill")
	}
	m.idleActions = []string{"add"} // a join while every task is idle
	for range 1 + rng.IntN(3) {
		m.idleActions = append(m.idleActions, kinds[rng.IntN(len(kinds))])
	}
	for range 2 + rng.IntN(4) {
		k := 1 + rng.IntN(revFuture)
		m.actions[k] = append(m.actions[k], kinds[rng.IntN(len(kinds))])
	}
	return m
}

// revResult is what a run emitted, and which minutes got late sales.
type revResult struct {
	totals map[revenue.Minute]revenue.Bucket
	late   map[revenue.Minute]bool
}

// TestMetamorphicRevenue runs one input through the revenue example (a
// repartition, a stream-time and a wall-clock punctuator) under random
// transaction sizes, commit intervals, instance counts, restarts on old
// state, SIGKILLs of a child process (`revenue run`, the example's command)
// and rebalances, mid-stream and while
// idle. Each run must pass revenue.Check, and the runs must agree.
//
// What is deterministic: a sale is late, and dead-lettered, when its
// product's task has closed its minute, which depends on the order in
// which the re-keyed sales of one product from several tills reach its
// task (the order their transactions committed, not sale time), so which
// sales are late is not. A minute without
// a late sale, though, is emitted once with the sum of all its valid
// sales, whatever the interleaving. The input is timed to keep the
// comparison wide:
//
//   - the present minute (its sales' times within the real current minute)
//     is produced first and then nothing for as long as it takes the
//     wall-clock punctuator to close it (until 80 s past its start): the
//     idle phase, with rebalances in it; a sale is late only if a run took
//     more than ~20 s to process it;
//   - then revFuture future minutes (revFutureAhead ahead, so the wall clock
//     never closes them), one at a time: a minute's sales are produced
//     only once the group has committed all of the previous minute's, on
//     the sales and the repartition topic, so no interleaving can make
//     one late. Kills and restarts happen while each minute is processed.
//
// So every run must emit each (product, minute) of the future minutes but
// the last (still open at the end) with the input's own sums, and the
// present minute's the same unless a sale was late; the comparison is of
// the (product, minute, cents, sales) multiset over the minutes no run got
// a late sale for, and the future minutes must be among them.
//
// The runs go through the phases side by side, driven from this goroutine
// (not as parallel subtests, which -parallel would queue: the idle phase
// is tied to the wall clock), so the test takes one run's time: 40 to
// 110 s, mostly the idle phase. EXACTLY_METAMORPHIC_SEED replays the
// configurations.
func TestMetamorphicRevenue(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EXACTLY_METAMORPHIC_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "EXACTLY_METAMORPHIC_SEED")
	}
	t.Logf("configuration seed %d (replay with EXACTLY_METAMORPHIC_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	cfgs := make([]revRun, revRuns)
	cfgs[0] = revRun{maxRecords: 1000, commitInterval: 100 * time.Millisecond, instances: 1}
	for i := 1; i < len(cfgs); i++ {
		cfgs[i] = randomRevRun(rng)
	}
	revenueBinary(t)
	runs := make([]*revEnv, len(cfgs))
	for i, m := range cfgs {
		t.Logf("run %d: %s", i, m)
		runs[i] = newRevEnv(t, i, m)
	}
	// The present minute holds now+10s: its sales can reach the tasks
	// before the wall clock closes it, at least 20 s from now.
	in := newRevInput(rand.New(rand.NewPCG(18, 18)), time.Now().Add(10*time.Second).Truncate(revenue.Window))
	each := func(fn func(r *revEnv)) {
		for _, r := range runs {
			fn(r)
		}
	}
	each(func(r *revEnv) { r.produce(in.steps[0]) })
	each(func(r *revEnv) { r.waitCaughtUp() })
	for i := range 4 {
		each(func(r *revEnv) {
			if i < len(r.m.idleActions) {
				r.act(r.m.idleActions[i])
			}
		})
		time.Sleep(2 * time.Second) // idle time for the rebalances: the point here
	}
	idleUntil := in.present.Add(revenue.Window + revenue.WallClockGrace + revenue.WallClockInterval)
	for time.Now().Before(idleUntil) {
		each(func(r *revEnv) { r.respawn() })
		time.Sleep(min(time.Second, time.Until(idleUntil)))
	}
	each(func(r *revEnv) { r.waitChecked(in.future, time.Minute) })
	// The future minutes, one at a time.
	for k := 1; k < len(in.steps); k++ {
		each(func(r *revEnv) { r.produce(in.steps[k]) })
		each(func(r *revEnv) {
			for _, a := range r.m.actions[k] {
				r.act(a)
			}
		})
		each(func(r *revEnv) { r.waitCaughtUp() })
	}
	lastOpen := in.future.Add(time.Duration(revFuture-1) * revenue.Window)
	results := make([]revResult, len(runs))
	for i, r := range runs {
		results[i] = r.waitChecked(lastOpen, time.Minute)
		if r.kid != nil {
			r.kid.stop(t)
		}
	}
	late := make(map[revenue.Minute]bool)
	for _, r := range results {
		maps.Copy(late, r.late)
	}
	for m := range late {
		require.True(t, m.Start.Before(in.future), "minute %s got a late sale: a future minute's sales come after the previous minute committed", m)
	}
	comparable := func(r revResult) map[revenue.Minute]revenue.Bucket {
		out := maps.Clone(r.totals)
		maps.DeleteFunc(out, func(m revenue.Minute, _ revenue.Bucket) bool { return late[m] })
		return out
	}
	want := comparable(results[0])
	require.GreaterOrEqual(t, len(want), revProducts*(revFuture-1), "the reference emitted too few totals")
	t.Logf("%d (product, minute) totals compared; %d left out for a late sale in some run", len(want), len(late))
	for i := 1; i < len(runs); i++ {
		require.Equal(t, want, comparable(results[i]), "run %d (%s) emitted other totals than the reference run", i, cfgs[i])
	}
}

// revEnv runs the revenue example in an env: in-process instances and at
// most one child process.
type revEnv struct {
	*env
	m       revRun
	group   string
	topo    *topology.Topology
	sales   []revenue.Sale // produced so far
	running []*inst
	next    int
	kid     *child
	kidDir  string
}

// newRevEnv starts run i's cluster (or its topics' prefix on
// KAFKA_BROKERS) and instances.
func newRevEnv(t *testing.T, i int, m revRun) *revEnv {
	e := newEnvParts(t, revPartitions)
	if e.real {
		e.prefix += fmt.Sprintf("r%d-", i)
	}
	r := &revEnv{env: e, m: m}
	r.setup()
	for range m.instances {
		r.startInst("")
	}
	if m.child {
		r.spawn()
	}
	return r
}

func (r *revEnv) setup() {
	t := r.t
	r.group = r.prefix + revenue.Group
	var err error
	r.topo, err = revenue.Topology(r.prefix)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sales := r.prefix + revenue.TopicSales
	resp, err := r.admin.CreateTopic(ctx, r.parts, -1, nil, sales)
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	// On a real cluster the broker an instance asks may not list a topic
	// created a moment ago, and a missing source topic is a configuration
	// error at start (it fails fast): wait until every broker lists it.
	require.Eventually(t, func() bool { return listedEverywhere(ctx, r.client, sales, r.parts) },
		30*time.Second, 100*time.Millisecond, "topic %s does not show in every broker's metadata", sales)
	r.kidDir = filepath.Join(r.root, "kid")
}

// waitCaughtUp waits until the group committed every sale and every
// repartitioned one, restarting a killed child meanwhile.
func (r *revEnv) waitCaughtUp() {
	t := r.t
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r.respawn()
		r.failed()
		left, err := r.uncommitted()
		if err == nil && left == 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "group %s did not catch up within 2m: %d records left (%v)", r.group, left, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// uncommitted returns how many sales and repartitioned sales the group has
// not committed. The repartition topic is written in transactions, so its
// end offsets lie past commit markers the group's offsets never pass:
// what is left there is read from the committed offsets on, up to the last
// stable offsets. A transaction still open on it (a SIGKILLed child's,
// until its restart fences it or it times out) counts as left: the
// records committed behind it by the member that took the child's sales
// over are past the last stable offset, so reading to it would miss them,
// the next minute's sales would move the tasks' stream time past this
// minute, and those records would come late.
func (r *revEnv) uncommitted() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lag, err := exactlytest.Lag(ctx, r.admin, r.group, r.prefix+revenue.TopicSales)
	if err != nil || lag > 0 {
		return lag, err
	}
	topic := topology.RepartitionTopic(r.group, revenue.ByProduct)
	if open, err := openOffsets(ctx, r.admin, topic); err != nil || open > 0 {
		return open, err
	}
	from, err := exactlytest.GroupOffsets(ctx, r.admin, r.group, topic)
	if err != nil {
		return 0, err
	}
	cl, err := r.client()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var left int64
	err = exactlytest.ReadCommittedFunc(ctx, cl, topic, exactlytest.ReadOptions{From: from}, func(*kgo.Record) error {
		left++
		return nil
	})
	return left, err
}

// openOffsets returns how many offsets of topic lie past its last stable
// offsets: behind transactions still open.
func openOffsets(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	ends, err := exactlytest.EndOffsets(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	stable, err := exactlytest.StableOffsets(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	var open int64
	for p, end := range ends {
		open += end - stable[p]
	}
	return open, nil
}

// startInst starts an in-process instance named name, on its state
// directory (old state on a restart), or a new one when name is "".
func (r *revEnv) startInst(name string) {
	if name == "" {
		name = fmt.Sprintf("i%d", r.next)
		r.next++
	}
	r.running = append(r.running, r.launch(r.topo, "revenue", name, name,
		processor.Group(r.group), processor.DeadLetterTopic(r.prefix+revenue.TopicDeadLetter),
		processor.MaxRecordsPerTxn(r.m.maxRecords), processor.CommitInterval(r.m.commitInterval)))
}

// revBinary is the revenue example's command, built once with the race
// detector next to the exactly binary (whose directory TestMain removes).
var revBinary struct {
	once sync.Once
	path string
	err  error
}

func revenueBinary(t testing.TB) string {
	t.Helper()
	revBinary.once.Do(func() {
		path := filepath.Join(filepath.Dir(binary), "revenue")
		build := exec.Command("go", "build", "-race", "-o", path, "../examples/revenue/cmd/revenue")
		if out, err := build.CombinedOutput(); err != nil {
			revBinary.err = fmt.Errorf("building the revenue binary: %w\n%s", err, out)
			return
		}
		revBinary.path = path
	})
	require.NoError(t, revBinary.err)
	return revBinary.path
}

// spawn starts the child, `revenue run`, on its state directory (old
// state after a kill).
func (r *revEnv) spawn() {
	args := []string{"run", "--brokers", strings.Join(r.brokers, ","),
		"--instance-id", "kid", "--state-dir", r.kidDir, "--topic-prefix", r.prefix,
		"--commit-interval", r.m.commitInterval.String(), "--max-records", strconv.Itoa(r.m.maxRecords),
		"--session-timeout", "6s", "--transaction-timeout", "5s", "--log-level", "info", "--log-format", "json"}
	r.kid = startChild(r.t, &r.wg, "instance kid", "kid", revenueBinary(r.t), args, r.childEnv())
	r.kid.dir = r.kidDir
}

// respawn restarts the child once it died; the child never exits by
// itself, so that is after a kill.
func (r *revEnv) respawn() {
	if r.kid != nil && r.kid.exited() {
		r.spawn()
	}
}

// act restarts, adds or removes an in-process instance, or kills the
// child and starts it again on its state.
func (r *revEnv) act(kind string) {
	t := r.t
	switch {
	case kind == "restart" && len(r.running) > 0:
		in := r.running[0]
		in.close(t)
		r.running = r.running[1:]
		r.startInst(in.name)
	case kind == "add" || kind == "remove" && len(r.running) == 0:
		r.startInst("")
	case kind == "remove" && (len(r.running) > 1 || r.kid != nil):
		r.running[0].close(t)
		r.running = r.running[1:]
	case kind == "kill" && r.kid != nil:
		dead := r.members(r.group + "-kid")
		r.kid.kill(t)
		r.evictLater(dead)
		r.spawn()
	}
}

// members returns the ids of the group's members with client id clientID
// (an instance's is its transactional id).
func (r *revEnv) members(clientID string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gs, err := r.admin.DescribeGroups(ctx, r.group)
	require.NoError(r.t, err)
	var ids []string
	for _, m := range gs[r.group].Members {
		if m.ClientID == clientID {
			ids = append(ids, m.MemberID)
		}
	}
	return ids
}

// evictLater works around the kfake bug internal/chaos's evictLater
// describes: a member whose process died while its JoinGroup or SyncGroup
// waited for a rebalance stays in the group for good, holding its
// partitions. Kafka expires it at its session timeout (6 s here), so the
// members of the killed child still there 8 s later are removed with a
// LeaveGroup naming them.
func (r *revEnv) evictLater(ids []string) {
	if r.real || len(ids) == 0 {
		return
	}
	r.wg.Go(func() {
		time.Sleep(8 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = r.group
		for _, id := range ids {
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = id
			req.Members = append(req.Members, m)
		}
		cl, err := r.client()
		if err != nil {
			return
		}
		defer cl.Close()
		// An error is the members' having gone: nothing to do.
		_, _ = req.RequestWith(ctx, cl)
	})
}

// produce writes sales keyed by their tills, in order.
func (r *revEnv) produce(sales []revSale) {
	t := r.t
	cl, err := r.client()
	require.NoError(t, err)
	defer cl.Close()
	var recs []*kgo.Record
	for _, s := range sales {
		v, err := json.Marshal(s.sale)
		require.NoError(t, err)
		recs = append(recs, &kgo.Record{Topic: r.prefix + revenue.TopicSales, Key: []byte(s.till), Value: v})
		r.sales = append(r.sales, s.sale)
	}
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
}

// waitChecked waits until the committed output passes revenue.Check with
// the minutes from openFrom on still open, and returns it.
func (r *revEnv) waitChecked(openFrom time.Time, timeout time.Duration) revResult {
	t := r.t
	deadline := time.Now().Add(timeout)
	for {
		r.respawn()
		r.failed()
		res, err := r.check(openFrom)
		if err == nil {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("the output did not pass revenue.Check within %s: %v", timeout, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// check reads the committed totals and dead letters and checks them.
func (r *revEnv) check(openFrom time.Time) (revResult, error) {
	res := revResult{totals: make(map[revenue.Minute]revenue.Bucket), late: make(map[revenue.Minute]bool)}
	cl, err := r.client()
	if err != nil {
		return res, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var totals []revenue.Revenue
	var dead []revenue.Sale
	read := func(topic string, fn func(v []byte) error) error {
		return exactlytest.ReadCommittedFunc(ctx, cl, topic, exactlytest.ReadOptions{}, func(rec *kgo.Record) error { return fn(rec.Value) })
	}
	err = errors.Join(
		read(r.prefix+revenue.TopicRevenue, func(v []byte) error {
			var x revenue.Revenue
			totals = append(totals, x)
			return json.Unmarshal(v, &totals[len(totals)-1])
		}),
		read(r.prefix+revenue.TopicDeadLetter, func(v []byte) error {
			var s revenue.Sale
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			dead = append(dead, s)
			if s.Validate() == nil {
				res.late[revenue.MinuteOf(s)] = true
			}
			return nil
		}))
	if err != nil {
		return res, err
	}
	for _, x := range totals {
		res.totals[revenue.Minute{Product: x.Product, Start: x.Minute.UTC()}] = revenue.Bucket{Cents: x.RevenueCents, Sales: x.Sales}
	}
	return res, revenue.Check(r.sales, dead, totals, openFrom)
}

// listedEverywhere reports whether every broker's metadata lists topic
// with parts partitions.
func listedEverywhere(ctx context.Context, client func() (*kgo.Client, error), topic string, parts int32) bool {
	cl, err := client()
	if err != nil {
		return false
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil || len(md.Brokers) == 0 {
		return false
	}
	for _, b := range md.Brokers {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
		if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || int32(len(resp.Topics[0].Partitions)) != parts {
			return false
		}
	}
	return true
}
