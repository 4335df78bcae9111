package outbox

import (
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Opt configures a Relay.
type Opt interface{ apply(*cfg) }

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

type cfg struct {
	name          string
	brokers       []string
	kgoOpts       []kgo.Opt
	table         string
	batchSize     int
	pollInterval  time.Duration
	txnTimeout    time.Duration
	progressTopic string
	idleTxn       time.Duration
	logger        *slog.Logger

	// Tests only (export_test.go).
	hook      func(point string) // called at every crash point
	highWater bool               // the wrong design: skip ids below the last published
}

func defaultCfg(name string) cfg {
	return cfg{
		name:         name,
		table:        DefaultTable,
		batchSize:    500,
		pollInterval: time.Second,
		txnTimeout:   10 * time.Second,
		idleTxn:      30 * time.Second,
		logger:       slog.New(slog.DiscardHandler),
	}
}

func (c *cfg) validate() error {
	switch {
	case c.name == "":
		return configErr("a name is required")
	case len(c.brokers) == 0:
		return configErr("brokers are required")
	case c.batchSize <= 0:
		return configErr("batch size must be positive, got %d", c.batchSize)
	case c.pollInterval <= 0:
		return configErr("poll interval must be positive, got %s", c.pollInterval)
	case c.txnTimeout <= 0:
		return configErr("transaction timeout must be positive, got %s", c.txnTimeout)
	case c.idleTxn < 0:
		return configErr("idle transaction timeout must not be negative, got %s", c.idleTxn)
	}
	if c.progressTopic == "" {
		c.progressTopic = c.name + "-outbox-progress"
	}
	return checkTable(c.table)
}

// transactionalID is the relay's stable transactional ID: every relay of
// one name uses it, so the newest fences every earlier one.
func (c *cfg) transactionalID() string { return c.name + "-outbox" }

// Brokers sets the seed brokers. Required.
func Brokers(brokers ...string) Opt { return opt(func(c *cfg) { c.brokers = brokers }) }

// KgoOpts adds kgo options (TLS, SASL, dialer) to the relay's clients. The
// transactional ID, transaction timeout and acks are the relay's and are
// set after these. The default value is none.
func KgoOpts(opts ...kgo.Opt) Opt {
	return opt(func(c *cfg) { c.kgoOpts = append(c.kgoOpts, opts...) })
}

// Table names the outbox table (a plain identifier, optionally
// schema-qualified). The default value is "outbox".
func Table(t string) Opt { return opt(func(c *cfg) { c.table = t }) }

// BatchSize bounds the rows of one batch: one Kafka transaction, one
// delete. The default value is 500.
func BatchSize(n int) Opt { return opt(func(c *cfg) { c.batchSize = n }) }

// PollInterval is how long the relay waits for new rows when the table is
// empty before it looks again. On PostgreSQL a write's notification wakes
// it earlier; the interval is then only a fallback. The default value is
// 1s.
func PollInterval(d time.Duration) Opt { return opt(func(c *cfg) { c.pollInterval = d }) }

// TransactionTimeout bounds a Kafka transaction. This corresponds to the
// Java transaction.timeout.ms. The default value is 10s.
func TransactionTimeout(d time.Duration) Opt { return opt(func(c *cfg) { c.txnTimeout = d }) }

// ProgressTopic sets the compacted topic holding the relay's progress.
// The default value is <name>-outbox-progress.
func ProgressTopic(t string) Opt { return opt(func(c *cfg) { c.progressTopic = t }) }

// IdleTransactionTimeout is how long the relay's delete transaction may
// wait for its next statement before the database server ends it
// (sqldb.IdleLimit). A relay frozen inside it (SIGSTOP, a VM pause) holds
// the rows' locks, and on MariaDB/MySQL the gap after them, which holds up
// its successor and the service's own outbox writes: this bounds that.
// SQLite has no such limit. Zero turns it off. The default value is 30s.
func IdleTransactionTimeout(d time.Duration) Opt {
	return opt(func(c *cfg) { c.idleTxn = d })
}

// WithLogger sets the logger. The default value discards.
func WithLogger(l *slog.Logger) Opt { return opt(func(c *cfg) { c.logger = l }) }
