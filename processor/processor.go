package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// Processor runs one instance of a topology. Create it with New, run it
// with Run, stop it by cancelling Run's context or with Close.
type Processor struct {
	cfg        cfg
	topo       *topology.Topology
	changelogs map[string]string   // store -> changelog topic
	storesOf   map[string][]string // source topic -> stores its records reach

	// db is set once the state opens in Run; queries (Query,
	// StateMetrics) may read it from other goroutines before that.
	db        atomic.Pointer[state.DB]
	adminCl   *kgo.Client
	admin     *kadm.Client
	restoreCl *kgo.Client
	tasks     *tasks
	refused   refused
	stats     counters
	parts     atomic.Int32 // input partition count, known after open
	hasWall   bool         // the topology has wall-clock punctuators
	// joined maps each source topic that shares a store with another to
	// the topics it is processed in time order with (order.go); nil when
	// none does.
	joined map[string][]string
	order  orderState // the loop's memory of joined inputs
	// globals maps each global store to the topic it replicates
	// (global.go).
	globals map[string]string
	// globalsReady is set once the global stores are bootstrapped: they
	// answer queries from then on.
	globalsReady atomic.Bool
	purge        purger      // repartition records to delete, below committed offsets
	coop         atomic.Bool // the session's balancers are all cooperative
	bg           sync.WaitGroup
	// noTopicIDs warns once that the brokers report no topic IDs.
	noTopicIDs sync.Once
	// fencedInstanceAt is when the group last fenced this static member
	// (rejoinFencedInstance); Run's goroutine owns it.
	fencedInstanceAt time.Time

	// loops holds the loops of an instance that runs several (Loops): p
	// then only runs them (loops.go) and answers for them. shared is set
	// on each of those loops, loopIndex is its index.
	loops     []*Processor
	shared    *loopShared
	loopIndex int

	progressMu sync.Mutex // restore progress logging
	progressAt time.Time
	progressN  int64

	mu struct {
		sync.Mutex
		running bool
		closed  bool
		cancel  context.CancelFunc
		done    chan struct{}
	}
}

type counters struct {
	committed, aborted, records, dlq, skipped, restored, restores, sessions atomic.Int64

	eventsMu sync.Mutex
	events   map[Event]int64
}

// New validates the topology against the configuration. Nothing is opened
// or contacted before Run.
func New(t *topology.Topology, opts ...Opt) (*Processor, error) {
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	t, err := t.ForApplication(c.group)
	if err != nil {
		return nil, configErr("topology", "%v", err)
	}
	p, err := newProcessor(c, t)
	if err != nil || c.loops == 1 {
		return p, err
	}
	// Several loops: p runs them (loops.go), each a Processor of its own
	// with the instance's configuration but its instance ID.
	sh := &loopShared{opened: make(chan struct{}), globals: make(chan struct{})}
	for i := range c.loops {
		lc := c
		lc.loops = 1
		lc.instanceID = loopInstanceID(c.instanceID, i)
		lc.logger = c.logger.With("loop", i)
		lc.resetState = c.resetState && i == 0 // loop 0 resets before the others start
		l, err := newProcessor(lc, t)
		if err != nil {
			return nil, err
		}
		l.shared, l.loopIndex = sh, i
		p.loops = append(p.loops, l)
	}
	sh.loops = p.loops
	return p, nil
}

// newProcessor builds a Processor of a validated configuration and its
// application's topology.
func newProcessor(c cfg, t *topology.Topology) (*Processor, error) {
	p := &Processor{
		cfg:        c,
		topo:       t,
		changelogs: make(map[string]string),
		storesOf:   make(map[string][]string),
		tasks:      newTasks(),
	}
	p.tasks.onRevoked = p.revokedUnheard
	for _, pi := range t.Punctuators() {
		p.hasWall = p.hasWall || pi.Type == topology.WallClock
	}
	for topic := range c.sourcePolicy {
		if !slices.Contains(t.SourceTopics(), topic) {
			return nil, configErr("error policy", "topic %s is not a source of the topology", topic)
		}
	}
	storeSrcs := make(map[string][]string)
	for _, store := range t.StoreNames() {
		p.changelogs[store] = ChangelogTopic(c.group, store)
		srcs := t.StoreSources(store)
		storeSrcs[store] = srcs
		for _, src := range srcs {
			p.storesOf[src] = append(p.storesOf[src], store)
		}
	}
	p.joined = joinedTopics(storeSrcs)
	p.globals = t.GlobalStores()
	return p, nil
}

// Stats returns the processor's cumulative counters.
func (p *Processor) Stats() Stats {
	if len(p.loops) > 0 {
		return p.loopsStats()
	}
	s := &p.stats
	return Stats{
		Committed: s.committed.Load(), Aborted: s.aborted.Load(), Records: s.records.Load(),
		DeadLettered: s.dlq.Load(), Skipped: s.skipped.Load(), Restored: s.restored.Load(), Restores: s.restores.Load(),
		SessionRestart: s.sessions.Load(),
		Events:         s.eventCounts(),
	}
}

func (s *counters) eventCounts() map[Event]int64 {
	s.eventsMu.Lock()
	defer s.eventsMu.Unlock()
	return maps.Clone(s.events)
}

func (s *counters) addEvents(events map[Event]int64) {
	if len(events) == 0 {
		return
	}
	s.eventsMu.Lock()
	defer s.eventsMu.Unlock()
	if s.events == nil {
		s.events = make(map[Event]int64)
	}
	for e, n := range events {
		s.events[e] += n
	}
}

// TransactionalID returns the transactional ID this instance uses: that of
// its loop 0 when it runs several (TransactionalIDs).
func (p *Processor) TransactionalID() string { return p.cfg.transactionalID() }

// TransactionalIDs returns the transactional ID of each of the instance's
// loops (Loops), in loop order.
func (p *Processor) TransactionalIDs() []string {
	if len(p.loops) == 0 {
		return []string{p.cfg.transactionalID()}
	}
	out := make([]string, len(p.loops))
	for i, l := range p.loops {
		out[i] = l.cfg.transactionalID()
	}
	return out
}

// Run opens the local state, checks or creates the topics, joins the group
// and processes until ctx is cancelled or a fatal error occurs. On
// cancellation the open transaction ends (committed if it can be, else
// aborted), the member leaves the group and the state is closed; Run then
// returns nil. Run may be called once.
func (p *Processor) Run(ctx context.Context) error {
	if len(p.loops) > 0 {
		return p.runLoops(ctx)
	}
	ctx, done, err := p.begin(ctx)
	if err != nil {
		return err
	}
	defer close(done)
	defer p.shutdown()
	if err := p.open(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: not a failure to start
		}
		return err
	}
	if p.shared != nil && p.loopIndex == 0 {
		close(p.shared.opened)
	}
	// The loop following the global topics stops before shutdown waits
	// for it (defers run last first).
	gctx, stopGlobals := context.WithCancel(ctx)
	defer stopGlobals()
	if p.shared != nil && p.loopIndex > 0 {
		// Loop 0 keeps the instance's global store replicas.
		if !p.waitGlobals(ctx) {
			return nil
		}
	} else {
		globals, err := p.bootstrapGlobals(gctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		case globals != nil:
			p.globalsReady.Store(true)
			p.spawn(func() { globals.follow(gctx) })
		}
		if p.shared != nil {
			close(p.shared.globals)
		}
	}
	if len(p.topo.Repartitions()) > 0 {
		// Stopped before shutdown waits for it (defers run last first).
		pctx, stopPurge := context.WithCancel(ctx)
		defer stopPurge()
		p.spawn(func() { p.purgeLoop(pctx) })
	}
	for attempt := 0; ; attempt++ {
		err := p.runSession(ctx)
		switch {
		case ctx.Err() != nil:
			p.leaveGroup(ctx, err)
			return nil
		case isFencedInstance(err):
			// Before IsFatal, which holds FENCED_INSTANCE_ID fatal: the
			// first one in a while rejoins.
			if err := p.rejoinFencedInstance(err); err != nil {
				return err
			}
		case IsFatal(err):
			return err
		case isFenced(err):
			if err := p.fenced(ctx, err); err != nil {
				return err
			}
		}
		p.stats.sessions.Add(1)
		p.cfg.logger.Warn("transaction session failed; recreating it", "err", err, "attempt", attempt+1)
		if !sleep(ctx, backoff(attempt)) {
			p.leaveGroup(ctx, err)
			return nil
		}
	}
}

// fenced decides what a session that ended fenced means: ErrFenced when a
// live twin holds the transactional ID, nil (recreate the session) when
// none does. A twin fences this instance only once it produces, after it
// joined the group, so it is a member when this runs; should the check
// ever miss it, the new session fences the twin, whose own check then sees
// this instance. Fencing keeps the output exactly-once either way.
//
// A member with this transactional ID as its client ID is not always a
// twin: this process's own earlier members (a leave that closeSession
// stopped waiting for) are known and skipped, and a predecessor that
// crashed stays a member until its session times out. So a member found
// is a twin only if it is still there after 1.5 session timeouts.
func (p *Processor) fenced(ctx context.Context, cause error) error {
	suspects, err := p.twins(ctx)
	if err != nil || len(suspects) == 0 {
		if err != nil {
			p.cfg.logger.Warn("fenced; cannot describe the group to look for a twin instance", "err", err)
		}
		p.cfg.logger.Warn("producer fenced, and no other member of the group has this transactional ID: the broker aborted the transaction (transaction timeout: a pause, a slow broker?); recreating the session", "err", cause)
		return nil
	}
	session, ok := p.adminCl.OptValue(kgo.SessionTimeout).(time.Duration)
	if !ok || session <= 0 {
		session = 45 * time.Second // kgo's default
	}
	wait := session * 3 / 2
	p.cfg.logger.Warn("producer fenced while another group member has this transactional ID: a twin, or a crashed predecessor whose session has not timed out; checking again", "members", suspects, "in", wait, "err", cause)
	if !sleep(ctx, wait) {
		return nil
	}
	again, err := p.twins(ctx)
	if err != nil {
		p.cfg.logger.Warn("fenced; cannot describe the group to look for a twin instance", "err", err)
		return nil
	}
	for id, host := range again {
		if _, ok := suspects[id]; ok {
			return fmt.Errorf("%w: group member %s on %s has transactional ID %s: %w", ErrFenced, id, host, p.cfg.transactionalID(), cause)
		}
	}
	p.cfg.logger.Warn("producer fenced; the other member with this transactional ID is gone (a crashed predecessor); recreating the session", "err", cause)
	return nil
}

// twins returns the members of the group (member ID to host) whose client
// ID is this transactional ID, other than this process's own sessions.
func (p *Processor) twins(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	groups, err := p.admin.DescribeGroups(ctx, p.cfg.group)
	if err == nil {
		err = groups.Error()
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]string)
	for _, m := range groups[p.cfg.group].Members {
		if m.ClientID == p.cfg.transactionalID() && !p.tasks.ownMember(m.MemberID) {
			out[m.MemberID] = m.ClientHost
		}
	}
	return out, nil
}

// Close stops a running Run and waits for it to return. It is idempotent
// and safe to call concurrently with Run.
func (p *Processor) Close() {
	p.mu.Lock()
	p.mu.closed = true
	cancel, done := p.mu.cancel, p.mu.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (p *Processor) begin(ctx context.Context) (context.Context, chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.mu.closed:
		return nil, nil, ErrClosed
	case p.mu.running:
		return nil, nil, errors.New("processor: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	p.mu.running, p.mu.cancel, p.mu.done = true, cancel, make(chan struct{})
	return ctx, p.mu.done, nil
}

// openState opens the local state.
func (p *Processor) openState() (*state.DB, error) {
	db, err := state.Open(p.cfg.stateDir, p.cfg.stateOpts)
	if err != nil {
		hint := "not usable"
		if errors.Is(err, state.ErrLocked) {
			hint = "locked by another running instance"
		}
		return nil, fmt.Errorf("%w: state dir %s: %s: %w", ErrConfig, p.cfg.stateDir, hint, err)
	}
	return db, nil
}

// open opens the state (a loop of several takes the instance's) and the
// helper clients and provisions topics.
func (p *Processor) open(ctx context.Context) error {
	db := p.sharedDB()
	if db == nil {
		var err error
		if db, err = p.openState(); err != nil {
			return err
		}
	}
	p.db.Store(db)
	var err error
	base := []kgo.Opt{kgo.SeedBrokers(p.cfg.brokers...), kgo.WithLogger(p.kgoLogger())}
	if p.adminCl, err = kgo.NewClient(append(base, p.cfg.kgoOpts...)...); err != nil {
		return fmt.Errorf("%w: brokers: %w", ErrConfig, err)
	}
	p.admin = kadm.NewClient(p.adminCl)
	if err := p.checkCluster(ctx); err != nil {
		return err
	}
	restoreOpts := append(base,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(p.cfg.fetchMaxWait),
	)
	if p.restoreCl, err = kgo.NewClient(append(restoreOpts, p.cfg.kgoOpts...)...); err != nil {
		return fmt.Errorf("%w: creating restore client: %w", ErrConfig, err)
	}
	if p.cfg.resetState {
		if err := p.resetState(ctx); err != nil {
			return err
		}
	}
	n, err := p.provisionTopics(ctx)
	p.parts.Store(n)
	return err
}

// provisionTopics runs ensureTopics, retrying for at most the startup
// timeout what is not a configuration error: a broker that dies while it
// answers (seen on Kafka: "broker closed the connection immediately during
// api versions negotiation" from one shutting down) must not stop an
// instance that the next try would start. Every step of ensureTopics is
// idempotent. What no retry mends is not retried: a configuration error, a
// missing ACL (IsFatal).
func (p *Processor) provisionTopics(ctx context.Context) (int32, error) {
	deadline := time.Now().Add(p.cfg.startupTimeout)
	for attempt := 0; ; attempt++ {
		n, err := p.ensureTopics(ctx)
		if err == nil || IsFatal(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return n, err
		}
		p.cfg.logger.Warn("retrying", "what", "checking and creating topics", "attempt", attempt+1, "err", err)
		if !sleep(ctx, backoff(attempt)) {
			return n, err
		}
	}
}

// checkCluster waits, at most the startup timeout, for the brokers to
// answer, and checks the transaction timeout against the brokers' maximum
// (transaction.max.timeout.ms) where they report it.
func (p *Processor) checkCluster(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.startupTimeout)
	defer cancel()
	// Brokers that refuse connections (still starting, say) are asked
	// again until the startup timeout.
	for attempt := 0; ; attempt++ {
		err := p.adminCl.Ping(ctx)
		if err == nil {
			break
		}
		if !sleep(ctx, backoff(attempt)) {
			return fmt.Errorf("%w: brokers %v: no answer within %s: %w", ErrConfig, p.cfg.brokers, p.cfg.startupTimeout, err)
		}
	}
	rcs, err := p.admin.DescribeBrokerConfigs(ctx)
	if err != nil {
		p.cfg.logger.Warn("cannot describe broker configs; transaction timeout not checked against the broker maximum", "err", err)
		return nil
	}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key != "transaction.max.timeout.ms" || c.Value == nil {
				continue
			}
			maxMs, err := strconv.ParseInt(*c.Value, 10, 64)
			if err == nil && p.cfg.txnTimeout > time.Duration(maxMs)*time.Millisecond {
				return configErr("transaction timeout", "%s exceeds the broker's transaction.max.timeout.ms (%dms)", p.cfg.txnTimeout, maxMs)
			}
		}
	}
	return nil
}

// shutdown closes what open opened, in reverse order. The session is
// already closed (and the group left, or the leave abandoned with its
// callbacks fenced off) by runSession.
func (p *Processor) shutdown() {
	p.bg.Wait()
	if p.restoreCl != nil {
		p.restoreCl.Close()
	}
	if p.adminCl != nil {
		p.adminCl.Close()
	}
	if db := p.db.Load(); db != nil && p.shared == nil { // the runner closes a shared one
		if err := db.Close(); err != nil {
			p.cfg.logger.Error("closing state", "err", err)
		}
	}
}

// sharedDB returns the instance's state when p is one of several loops.
func (p *Processor) sharedDB() *state.DB {
	if p.shared == nil {
		return nil
	}
	return p.shared.db
}

// kgoLogger bridges kgo's logs at warn and above, and those of its info
// lines that say why the transaction session aborts: kgo logs every
// transaction at info, but its reasons for an abort only there.
func (p *Processor) kgoLogger() kgo.Logger {
	return kslog.New(slog.New(kgoFilter{p.cfg.logger.Handler()}).With("component", "kgo"))
}

// kgoFilter passes kgo's warnings and errors, and its info lines about
// aborting transactions (see kgo's txn.go); not its info lines about
// transactions that went well, one per commit.
type kgoFilter struct{ slog.Handler }

func (f kgoFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo && f.Handler.Enabled(ctx, l)
}

func (f kgoFilter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn || abortReason(r) {
		return f.Handler.Handle(ctx, r)
	}
	return nil
}

// abortReason reports whether a kgo info line explains an abort: a revoke
// or loss dooming the transaction, an End that wanted to commit and could
// not, an EndTxn retried as an abort.
func abortReason(r slog.Record) bool {
	switch {
	case strings.HasPrefix(r.Message, "transact session in on_revoke; aborting"),
		strings.HasPrefix(r.Message, "transact session in on_lost"),
		strings.HasPrefix(r.Message, "end transaction ") && strings.Contains(r.Message, "retrying as abort"),
		strings.HasPrefix(r.Message, "heartbeat returned RebalanceInProgress"):
		return true
	case r.Message != "transaction session ending":
		return false
	}
	want, will := false, false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "want_commit":
			want = a.Value.Resolve().String() == "true"
		case "will_try_commit":
			will = a.Value.Resolve().String() == "true"
		}
		return true
	})
	return want && !will
}

func (f kgoFilter) WithAttrs(as []slog.Attr) slog.Handler { return kgoFilter{f.Handler.WithAttrs(as)} }

func (f kgoFilter) WithGroup(g string) slog.Handler { return kgoFilter{f.Handler.WithGroup(g)} }

// spawn runs fn on a goroutine that shutdown waits for.
func (p *Processor) spawn(fn func()) {
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		fn()
	}()
}

func backoff(attempt int) time.Duration {
	return min(50*time.Millisecond<<min(attempt, 10), 2*time.Second)
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
