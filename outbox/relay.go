package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/crashpoint"
	"github.com/exactly-stream/exactly/internal/runonce"
	"github.com/exactly-stream/exactly/internal/tuning"
	"github.com/exactly-stream/exactly/sqldb"
)

// Relay publishes the rows of an outbox table to Kafka exactly once (see
// the package documentation). Create it with NewRelay, run it with Run,
// stop it by cancelling Run's context or with Close. Stats may be called
// concurrently with Run. Run one relay per outbox table and name: a second
// one fences the first.
type Relay struct {
	cfg cfg
	db  *sql.DB
	d   sqldb.Dialect
	q   queries

	idle sqldb.IdleLimit // set by Run

	cl  *kgo.Client // plain client: admin requests, progress reads
	adm *kadm.Client

	wake  chan struct{} // a PostgreSQL notification: rows may be waiting
	stats stats

	// Loop only.
	known map[string]bool // topics known to exist
	last  int64           // the highest id published (the test-only high-water design)

	goroutines sync.WaitGroup // the listener
	life       runonce.Guard  // Run at most once; Close stops it
}

// NewRelay returns a relay named name (the prefix of its transactional ID
// and of its progress topic) of the outbox table in db, a database of
// dialect d. db stays the caller's: Close does not close it. On
// PostgreSQL the relay keeps one of db's connections for LISTEN, so db
// must allow at least two.
func NewRelay(name string, db *sql.DB, d sqldb.Dialect, opts ...Opt) (*Relay, error) {
	c := defaultCfg(name)
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if d.DriverName() == "" {
		return nil, configErr("unknown dialect %v", d)
	}
	if db == nil {
		return nil, configErr("a database is required")
	}
	if n := db.Stats().MaxOpenConnections; d == sqldb.Postgres && n > 0 && n < 2 {
		return nil, configErr("on PostgreSQL the relay holds one connection for LISTEN and needs another to work: the pool allows %d", n)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.brokers...)}, c.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: creating the Kafka client: %w", ErrConfig, err)
	}
	r := &Relay{cfg: c, db: db, d: d, q: newQueries(d, c.table), cl: cl, adm: kadm.NewClient(cl), wake: make(chan struct{}, 1)}
	r.life.Init()
	return r, nil
}

// producerOpts are the options of the relay's transactional producer. The
// backoffs are the processor's (internal/tuning); KgoOpts may override
// them.
func (r *Relay) producerOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(r.cfg.brokers...)}
	opts = append(opts, tuning.ClientOpts()...)
	opts = append(opts, r.cfg.kgoOpts...)
	id := r.cfg.transactionalID()
	return append(opts,
		kgo.ClientID(id),
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(r.cfg.txnTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
}

// Run relays until ctx is done, Close is called or a fatal error occurs
// (IsFatal: a fence, a malformed row, a configuration error). Other
// errors (the database or Kafka unreachable, an aborted transaction) are
// logged and retried from the recovery step, with a backoff. Run returns
// nil after a clean stop. It must not be called twice.
func (r *Relay) Run(ctx context.Context) error {
	ctx, end, err := r.life.Start(ctx, "outbox", ErrClosed)
	if err != nil {
		return err
	}
	defer end()
	ctx, cancel := context.WithCancel(ctx)
	// Shutdown order: stop the listener (cancel), wait for it, then
	// close the client it does not use but the loop did.
	defer r.cl.Close()
	defer r.goroutines.Wait()
	defer cancel()
	if err := r.ensureProgressTopic(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if r.idle, err = sqldb.NewIdleLimit(ctx, r.db, r.d, r.cfg.idleTxn); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if r.d == sqldb.Postgres {
		r.goroutines.Go(func() { r.listen(ctx) })
	}
	for failures := 0; ; failures++ {
		err := r.session(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case IsFatal(err):
			return err
		}
		r.cfg.logger.Warn("outbox relay: starting over from the progress", "relay", r.cfg.name, "err", err)
		if !sleep(ctx, backoff(failures)) {
			return nil
		}
	}
}

// session initializes the producer (fencing every earlier relay of this
// name), finishes the last committed batch's delete, then relays batches
// until an error.
func (r *Relay) session(ctx context.Context) error {
	prod, err := kgo.NewClient(r.producerOpts()...)
	if err != nil {
		return fmt.Errorf("%w: creating the producer: %w", ErrConfig, err)
	}
	defer prod.Close()
	if _, _, err := prod.ProducerID(ctx); err != nil {
		return fenced(fmt.Errorf("initializing transactional ID %s: %w", r.cfg.transactionalID(), err))
	}
	done, err := r.readProgress(ctx)
	if err != nil {
		return err
	}
	if err := r.deleteRows(ctx, done); err != nil {
		return err
	}
	r.known = make(map[string]bool)
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		n, err := r.batch(ctx, prod)
		if err != nil {
			return err
		}
		if n == r.cfg.batchSize {
			continue // more may be waiting
		}
		poll.Reset(r.cfg.pollInterval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
		case <-poll.C:
		}
	}
}

// Close stops Run and waits for it to return. It is idempotent. It does
// not close the database.
func (r *Relay) Close() {
	r.life.Close(r.cl.Close) // if Run never ran (and now never will), its client is closed here
}

// hit marks a crash point.
func (r *Relay) hit(point string) {
	crashpoint.Hit(point)
	if r.cfg.hook != nil {
		r.cfg.hook(point)
	}
}

// fenced wraps err in ErrFenced when it says another producer took the
// transactional ID.
func fenced(err error) error {
	if isFenced(err) {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return err
}

func backoff(n int) time.Duration {
	return min(100*time.Millisecond<<min(n, 6), 5*time.Second)
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
