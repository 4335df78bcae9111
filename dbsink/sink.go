package dbsink

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/runonce"
	"github.com/exactly-stream/exactly/sqldb"
)

// Sink applies records from Kafka topics to a database exactly once.
// Create it with New, run it with Run, stop it by cancelling Run's context
// or with Close. Stats may be called concurrently with Run.
type Sink struct {
	cfg  cfg
	sql  offsetsSQL
	idle sqldb.IdleLimit // set by Run before the client exists
	cl   *kgo.Client     // the group consumer; created by Run

	mu struct {
		sync.Mutex
		owned map[tp]*partState
		fatal error
	}

	stats stats

	// beforeTxn, set by tests, runs after a batch is polled and before
	// its transaction begins: a zombie test pauses the sink there.
	beforeTxn func()

	life runonce.Guard // Run at most once; Close stops it
}

// partState is what the sink knows of a partition it owns, from its
// claim on. A new claim makes a new partState.
type partState struct {
	epoch int64
	// committed is the next offset stored in the database, -1 none.
	committed int64
	// next is the next offset a batch may take: committed plus the
	// records taken since.
	next int64
	// end is the last stable offset as last fetched, -1 unknown.
	end int64
}

// New returns a sink named name (its consumer group, and its rows' key in
// the sink's tables) that applies records to db, of dialect d, through h.
func New(name string, db *sql.DB, d sqldb.Dialect, h Handler, opts ...Opt) (*Sink, error) {
	c := defaultCfg()
	c.name, c.db, c.dialect, c.handler = name, db, d, h
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	s := &Sink{cfg: c, sql: newOffsetsSQL(d, c.tables)}
	s.life.Init()
	s.mu.owned = make(map[tp]*partState)
	return s, nil
}

func (s *Sink) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(s.cfg.brokers...)}
	opts = append(opts, s.cfg.clientOpts...)
	return append(opts,
		kgo.ConsumerGroup(s.cfg.name),
		kgo.ConsumeTopics(s.cfg.topics...),
		kgo.ClientID(s.cfg.owner()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(s.cfg.fetchMaxWait),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// The group's offsets are never committed: they live in the
		// database, with the writes.
		kgo.DisableAutoCommit(),
		// No revoke between a poll and the end of its transaction: a
		// member applies only what it owns as far as the group knows.
		// The owner epoch covers what the group cannot (an expelled
		// member that has not heard so).
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onRevoked),
		kgo.AdjustFetchOffsetsFn(s.adjustOffsets),
	)
}

// Run applies records until ctx is done, Close is called or an error that
// retries cannot mend occurs. Before joining the group it creates the
// sink's tables when missing and refuses a database that cannot fence
// (CheckDatabase). It returns nil after a clean stop. It must not be
// called twice.
func (s *Sink) Run(ctx context.Context) error {
	ctx, end, err := s.life.Start(ctx, "dbsink", ErrClosed)
	if err != nil {
		return err
	}
	defer end()
	if err := EnsureSchema(ctx, s.cfg.db, s.cfg.dialect, s.cfg.tables); err != nil {
		// Instances starting together race on CREATE TABLE IF NOT
		// EXISTS (PostgreSQL may then report a duplicate type): once
		// more, the tables exist.
		if !sleep(ctx, 200*time.Millisecond) {
			return nil
		}
		if err := EnsureSchema(ctx, s.cfg.db, s.cfg.dialect, s.cfg.tables); err != nil {
			return err
		}
	}
	if err := CheckDatabase(ctx, s.cfg.db, s.cfg.dialect, s.cfg.tables); err != nil {
		return err
	}
	if s.idle, err = sqldb.NewIdleLimit(ctx, s.cfg.db, s.cfg.dialect, s.cfg.idleTxn); err != nil {
		return err
	}
	cl, err := kgo.NewClient(s.clientOpts()...)
	if err != nil {
		return fmt.Errorf("%w: creating the consumer: %w", ErrConfig, err)
	}
	s.cl = cl
	err = s.loop(ctx)
	cl.Close() // leaves the group; the revoke callback forgets every partition
	return err
}

// Close stops Run and waits for it to return. It is idempotent.
func (s *Sink) Close() {
	s.life.Close(nil)
}

// adjustOffsets claims newly assigned partitions in the database and
// starts each at its stored next offset (at the log start when it has
// none). kgo calls it before it fetches any of them; the group's own
// offsets, which the sink never commits, are ignored.
func (s *Sink) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var parts []tp
	for t, ps := range offsets {
		for p := range ps {
			parts = append(parts, tp{t, p})
		}
	}
	var claims map[tp]claim
	var err error
	for attempt := 1; ; attempt++ {
		if claims, err = s.claimPartitions(ctx, parts); err == nil || attempt == 3 || ctx.Err() != nil {
			break
		}
		s.cfg.logger.Warn("claiming assigned partitions; retrying", "err", err)
		if !sleep(ctx, backoff(attempt)) {
			break
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			s.setFatal(fmt.Errorf("claiming assigned partitions: %w", err))
		}
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, c := range claims {
		s.mu.owned[p] = &partState{epoch: c.epoch, committed: c.next, next: c.next, end: -1}
		if c.next >= 0 {
			offsets[p.topic][p.part] = kgo.NewOffset().At(c.next).WithEpoch(-1)
		} else {
			offsets[p.topic][p.part] = kgo.NewOffset().AtStart()
		}
	}
	s.cfg.logger.Info("partitions claimed", "partitions", offsets)
	return offsets, nil
}

// onRevoked forgets revoked or lost partitions. With BlockRebalanceOnPoll
// kgo calls it only between batches.
func (s *Sink) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	n := 0
	s.mu.Lock()
	for t, parts := range revoked {
		for _, p := range parts {
			delete(s.mu.owned, tp{t, p})
			n++
		}
	}
	s.mu.Unlock()
	if n > 0 {
		s.cfg.logger.Info("partitions revoked", "partitions", revoked)
	}
}

// forget drops parts, lost to another member, if their state is still st.
func (s *Sink) forget(lost map[tp]*partState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, st := range lost {
		if s.mu.owned[p] == st {
			delete(s.mu.owned, p)
		}
	}
}

func (s *Sink) setFatal(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.fatal == nil {
		s.mu.fatal = err
	}
}

func (s *Sink) fatal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.fatal
}

func backoff(n int) time.Duration {
	return min(50*time.Millisecond<<min(n, 7), 5*time.Second)
}

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
