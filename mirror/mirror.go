package mirror

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/groupscope"
	"github.com/exactly-stream/exactly/internal/runonce"
	"github.com/exactly-stream/exactly/internal/tuning"
)

// Mirror copies topics from a source cluster to a target cluster exactly
// once. Create it with New, run it with Run, stop it by cancelling Run's
// context or with Close. Stats may be called concurrently with Run.
type Mirror struct {
	cfg cfg
	re  *regexp.Regexp

	tgt     *kgo.Client // the target's plain client: admin requests, positions
	tgtAdm  *kadm.Client
	srcMeta *kgo.Client  // the source's plain client, for admin requests; created by Run
	srcAdm  *kadm.Client // on srcMeta
	src     *kgo.Client  // the source's group consumer; created by Run
	// srcScope fences off src's group callbacks once Run stops, and
	// cancelSrc cancels src's own context (kgo.WithContext), which cuts a
	// close short that waits on a JoinGroup the coordinator holds (see
	// groupscope).
	srcScope  *groupscope.Scope
	cancelSrc context.CancelFunc

	offsetsParts int32

	// epoch counts revokes and losses: a transaction stops collecting
	// records when it changes. A partition's transaction commits only if
	// the partition is still owned, checked under commitMu; a revoke
	// forgets the partition, then takes commitMu, so the callback returns
	// only once no commit that could hold a revoked partition is in
	// flight (see the package documentation).
	epoch    atomic.Int64
	commitMu sync.Mutex

	mu struct {
		sync.Mutex
		ensured map[string]bool // source topics whose target topic was checked
		owned   map[tp]*partState
		retired []*partState // revoked, their producers not closed yet (the loop closes them)
		fatal   error
	}

	stats stats

	// crash, set by tests, makes Run return at once at the named point,
	// leaving the transaction open, as a killed process would.
	crash func(point string) bool

	life runonce.Guard // Run at most once; Close stops it
}

// partState is what the mirror knows of a source partition it owns, from
// its assignment on. A new assignment makes a new partState.
type partState struct {
	// next is the next source offset a transaction may take: the
	// committed position plus the records taken since.
	next int64
	// committed is the position stored in the offsets topic.
	committed int64
	// end is the source's last stable offset as last fetched, -1 unknown.
	end int64

	// Set on assignment; then used by the loop only.
	txnID  string
	prod   *kgo.Client // the transactional producer of this partition's copies
	open   bool        // a transaction of prod is open
	closed bool        // prod is closed
	sync   Sync        // the sync point at the start of the next transaction
}

// New returns a mirror named name (the source consumer group, the prefix
// of the transactional ID and of the offsets topic).
func New(name string, opts ...Opt) (*Mirror, error) {
	c := defaultCfg(name)
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	m := &Mirror{cfg: c}
	m.life.Init()
	if c.topicsRegex != "" {
		m.re = regexp.MustCompile(c.topicsRegex)
	}
	m.mu.ensured = make(map[string]bool)
	m.mu.owned = make(map[tp]*partState)
	tgt, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.targetBrokers...)}, c.targetOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: creating target client: %w", ErrConfig, err)
	}
	if d, _ := tgt.OptValue(kgo.RecordDeliveryTimeout).(time.Duration); d > 0 {
		tgt.Close()
		return nil, configErr("record delivery timeout %s: kgo counts it from the record timestamp, which the mirror copies from the source, so old records would expire; leave it unset (the transaction timeout bounds delivery)", d)
	}
	m.tgt, m.tgtAdm = tgt, kadm.NewClient(tgt)
	return m, nil
}

// producerOpts are the options of a partition's transactional producer.
// kgo's retry and CONCURRENT_TRANSACTIONS backoffs are the processor's
// (internal/tuning): with kgo's defaults, a transaction begun right after
// the previous one's commit waits out a quarter second of backoff on Kafka
// with transaction protocol v2. TargetOpts may override them.
func (m *Mirror) producerOpts(txnID string) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(m.cfg.targetBrokers...)}
	opts = append(opts, tuning.ClientOpts()...)
	opts = append(opts, m.cfg.targetOpts...)
	return append(opts,
		kgo.ClientID(txnID),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(m.cfg.txnTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
}

func (m *Mirror) sourceOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(m.cfg.sourceBrokers...)}
	opts = append(opts, m.cfg.sourceOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(m.cfg.sourceGroup()),
		kgo.ClientID(m.cfg.instance()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(m.cfg.fetchMaxWait),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Source group offsets are never committed: the positions live
		// in the target's offsets topic.
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(m.srcScope.Guard(m.onAssigned)),
		kgo.OnPartitionsRevoked(m.srcScope.Guard(m.onRevoked)),
		kgo.OnPartitionsLost(m.srcScope.Guard(m.onRevoked)),
		kgo.AdjustFetchOffsetsFn(func(_ context.Context, offsets map[string]map[int32]kgo.Offset) (out map[string]map[int32]kgo.Offset, err error) {
			err = m.srcScope.Do(func(ctx context.Context) error {
				out, err = m.adjustOffsets(ctx, offsets)
				return err
			})
			return out, err
		}),
	)
	if m.re != nil {
		return append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(m.cfg.topicsRegex))
	}
	return append(opts, kgo.ConsumeTopics(m.cfg.topics...))
}

// Run mirrors until ctx is done, Close is called or an error that retries
// cannot mend occurs. Before joining the source group it checks (and
// creates) the target topics. Run returns nil after a clean stop. It must
// not be called twice.
func (m *Mirror) Run(ctx context.Context) error {
	ctx, end, err := m.life.Start(ctx, "mirror", ErrClosed)
	if err != nil {
		return err
	}
	defer end()
	defer func() { // after the group client: its callbacks use srcAdm
		if m.srcMeta != nil {
			m.srcMeta.Close()
		}
	}()
	if err := m.prepare(ctx); err != nil {
		m.tgt.Close()
		return err
	}
	m.srcScope = groupscope.New(ctx)
	defer m.srcScope.Close()
	srcCtx, cancelSrc := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSrc()
	m.cancelSrc = cancelSrc
	src, err := kgo.NewClient(append(m.sourceOpts(), kgo.WithContext(srcCtx))...)
	if err != nil {
		m.tgt.Close()
		return fmt.Errorf("%w: creating source client: %w", ErrConfig, err)
	}
	m.src = src
	err = m.loop(ctx)
	if errors.Is(err, errCrashed) {
		// A test's simulated kill: nothing is ended, nothing is left.
		m.closeProducers(false)
		m.tgt.Close()
		src.Close()
		return err
	}
	m.shutdown()
	return err
}

// prepare checks the target topics.
func (m *Mirror) prepare(ctx context.Context) error {
	src, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(m.cfg.sourceBrokers...)}, clientOnly(m.cfg.sourceOpts)...)...)
	if err != nil {
		return fmt.Errorf("%w: creating source admin client: %w", ErrConfig, err)
	}
	m.srcMeta, m.srcAdm = src, kadm.NewClient(src)
	if m.offsetsParts, err = m.ensureOffsetsTopic(ctx); err != nil {
		return err
	}
	topics, err := m.sourceTopics(ctx)
	if err != nil {
		return err
	}
	return m.ensureTopics(ctx, topics)
}

// shutdown aborts the open transactions, then leaves the source group and
// closes every client. The order matters: the transactions end while this
// instance still owns their partitions. Closing the group callbacks' scope
// waits for a callback in flight (an assignment taking partitions), whose
// producers the second round closes; no callback runs after it, so leaving
// the group takes no partition. Leaving waits at most
// groupscope.LeaveTimeout: during a rebalance the coordinator may hold our
// JoinGroup until the rebalance timeout.
func (m *Mirror) shutdown() {
	m.closeProducers(true)
	m.srcScope.Close()
	m.closeProducers(true)
	groupscope.Close(m.src.Close, m.cancelSrc, groupscope.LeaveTimeout, m.cfg.logger)
	m.tgt.Close()
}

// closeProducers closes the producers of every owned and retired
// partition, first aborting their open transactions if abort is set. The
// loop must not be running.
func (m *Mirror) closeProducers(abort bool) {
	m.mu.Lock()
	sts := m.mu.retired
	m.mu.retired = nil
	for _, st := range m.mu.owned {
		sts = append(sts, st)
	}
	m.mu.Unlock()
	m.closeStates(sts, abort)
}

// closeStates aborts (if abort is set) the open transactions of sts and
// closes their producers, concurrently. Closing twice is harmless.
func (m *Mirror) closeStates(sts []*partState, abort bool) {
	var wg sync.WaitGroup
	for _, st := range sts {
		wg.Go(func() {
			if abort && st.open {
				ctx, cancel := context.WithTimeout(context.Background(), m.cfg.txnTimeout)
				if err := st.prod.EndTransaction(ctx, kgo.TryAbort); err != nil {
					m.cfg.logger.Debug("aborting an open transaction", "transactional_id", st.txnID, "err", err)
				}
				cancel()
			}
			st.open = false
			if !st.closed {
				st.closed = true
				st.prod.Close()
			}
		})
	}
	wg.Wait()
}

// Close stops Run and waits for it to return. It is idempotent.
func (m *Mirror) Close() {
	m.life.Close(m.tgt.Close) // if Run never ran (and now never will), its client is closed here
}

// setFatal records an error found in a group callback; the loop returns it.
func (m *Mirror) setFatal(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.fatal == nil {
		m.mu.fatal = err
	}
}

func (m *Mirror) fatal() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.fatal
}

// clientOnly drops consumer, group and producer options: TLS, SASL,
// dialer, metadata ages and logger remain.
func clientOnly(opts []kgo.Opt) []kgo.Opt {
	var out []kgo.Opt
	for _, o := range opts {
		switch o.(type) {
		case kgo.ConsumerOpt, kgo.GroupOpt, kgo.ProducerOpt:
			continue
		}
		out = append(out, o)
	}
	return out
}
