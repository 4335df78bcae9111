package dbsink

import (
	"context"
	"database/sql"
	"log/slog"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/sqldb"
)

// Handler applies one record inside the batch's database transaction. It
// must do all its writes through tx (never through another connection) and
// must not commit or roll it back. It returns Malformed(err) for a record
// that can never be applied (dead-lettered), another error to roll the
// batch back and try again. It is called from one goroutine at a time, in
// partition order; a batch rolled back is applied again, so Apply may see
// a record more than once, but only one of those transactions commits.
type Handler interface {
	Apply(ctx context.Context, tx *sql.Tx, rec *kgo.Record) error
}

// HandlerFunc is a function that is a Handler.
type HandlerFunc func(ctx context.Context, tx *sql.Tx, rec *kgo.Record) error

// Apply calls f.
func (f HandlerFunc) Apply(ctx context.Context, tx *sql.Tx, rec *kgo.Record) error {
	return f(ctx, tx, rec)
}

// Opt configures a Sink.
type Opt interface{ apply(*cfg) }

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

type cfg struct {
	name         string
	db           *sql.DB
	dialect      sqldb.Dialect
	handler      Handler
	brokers      []string
	clientOpts   []kgo.Opt
	topics       []string
	instanceID   string
	tables       Tables
	maxRecords   int
	fetchMaxWait time.Duration
	maxFailures  int
	idleTxn      time.Duration
	logger       *slog.Logger
}

func defaultCfg() cfg {
	return cfg{
		instanceID:   "0",
		tables:       DefaultTables(),
		maxRecords:   1000,
		fetchMaxWait: 500 * time.Millisecond,
		maxFailures:  8,
		idleTxn:      30 * time.Second,
		logger:       slog.New(slog.DiscardHandler),
	}
}

// identifier is what the sink accepts as a table name: it is put into SQL
// as it is.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func (c *cfg) validate() error {
	switch {
	case c.name == "":
		return configErr("a name is required (it is the consumer group)")
	case c.db == nil:
		return configErr("a database is required")
	case c.dialect.DriverName() == "":
		return configErr("unknown dialect %v", c.dialect)
	case c.handler == nil:
		return configErr("a handler is required")
	case len(c.brokers) == 0:
		return configErr("brokers are required")
	case len(c.topics) == 0:
		return configErr("topics are required")
	case c.instanceID == "":
		return configErr("the instance ID must not be empty")
	case !identifier.MatchString(c.tables.Offsets) || !identifier.MatchString(c.tables.DeadLetters):
		return configErr("table names %q and %q: want letters, digits and underscores", c.tables.Offsets, c.tables.DeadLetters)
	case c.tables.Offsets == c.tables.DeadLetters:
		return configErr("the offsets and dead-letter tables must differ")
	case c.maxRecords <= 0:
		return configErr("max records per batch must be positive")
	case c.maxFailures <= 0:
		return configErr("max failures must be positive")
	case c.idleTxn < 0:
		return configErr("the idle transaction timeout must not be negative")
	}
	return nil
}

// owner names this instance in the offsets table.
func (c *cfg) owner() string { return c.name + "-" + c.instanceID }

// Brokers sets the seed brokers. Required.
func Brokers(brokers ...string) Opt { return opt(func(c *cfg) { c.brokers = brokers }) }

// Topics sets the topics to consume. Required.
func Topics(topics ...string) Opt { return opt(func(c *cfg) { c.topics = topics }) }

// ClientOpts adds kgo options (TLS, SASL, dialer, session timeout) to the
// consumer. Isolation level, group, offsets and rebalance options are the
// sink's and are set after these. The default value is none.
func ClientOpts(opts ...kgo.Opt) Opt {
	return opt(func(c *cfg) { c.clientOpts = append(c.clientOpts, opts...) })
}

// InstanceID names this instance: its client ID is <name>-<instance id>,
// written as the owner of the partitions it takes. Fencing does not depend
// on it. The default value is "0".
func InstanceID(id string) Opt { return opt(func(c *cfg) { c.instanceID = id }) }

// TableNames sets the sink's tables. The default value is DefaultTables().
func TableNames(t Tables) Opt { return opt(func(c *cfg) { c.tables = t }) }

// MaxRecords bounds the records of one database transaction. The default
// value is 1000.
func MaxRecords(n int) Opt { return opt(func(c *cfg) { c.maxRecords = n }) }

// FetchMaxWait is how long a fetch waits for data. This corresponds to the
// Java fetch.max.wait.ms. The default value is 500ms.
func FetchMaxWait(d time.Duration) Opt { return opt(func(c *cfg) { c.fetchMaxWait = d }) }

// MaxFailures is how many transactions of one batch in a row may fail
// (a Handler error, a database error) before Run stops. The default value
// is 8.
func MaxFailures(n int) Opt { return opt(func(c *cfg) { c.maxFailures = n }) }

// IdleTransactionTimeout is how long one of the sink's database
// transactions may wait for its next statement before the database server
// ends it, closing its connection (sqldb.IdleLimit): on PostgreSQL
// idle_in_transaction_session_timeout, on MariaDB idle_transaction_timeout,
// on MySQL wait_timeout (both in whole seconds). A member frozen in the
// middle of a transaction (SIGSTOP, a VM pause) holds the locks of its
// partitions' offset rows, and the member that takes them over waits for
// them: this bounds that wait. The Handler's own time between two
// statements counts as idle, so it must stay well below this. SQLite has no
// such limit (a frozen process holds the database's write lock until it
// wakes or dies). Zero turns the limit off. The default value is 30s.
func IdleTransactionTimeout(d time.Duration) Opt {
	return opt(func(c *cfg) { c.idleTxn = d })
}

// WithLogger sets the logger. The default value discards.
func WithLogger(l *slog.Logger) Opt { return opt(func(c *cfg) { c.logger = l }) }
