package processor

import (
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/state"
)

// Opt configures a Processor.
type Opt interface{ apply(*cfg) }

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

type cfg struct {
	brokers        []string
	group          string
	instanceID     string
	stateDir       string
	maxRecords     int
	commitInterval time.Duration
	taskIdle       time.Duration
	txnTimeout     time.Duration
	fetchMaxWait   time.Duration
	dlqTopic       string
	createTopics   bool
	replication    int16
	restoreTimeout time.Duration
	restoreBatch   int
	stateOpts      state.Options
	logger         *slog.Logger
	kgoOpts        []kgo.Opt
	hooks          hookList
	policy         ErrorPolicy
	sourcePolicy   map[string]ErrorPolicy
	maxAborts      int
	startupTimeout time.Duration
	resetState     bool
	dynamic        bool // no group.instance.id (StaticMembership(false))
	stayOnStop     bool // a static member does not leave on a clean stop
	loops          int
}

func defaultCfg() cfg {
	return cfg{
		maxRecords:     DefaultMaxRecordsPerTxn,
		commitInterval: 100 * time.Millisecond,
		txnTimeout:     10 * time.Second,
		fetchMaxWait:   250 * time.Millisecond,
		createTopics:   true,
		replication:    -1,
		restoreTimeout: 60 * time.Second,
		restoreBatch:   10000,
		maxAborts:      10,
		loops:          1,
		startupTimeout: 30 * time.Second,
		logger:         slog.New(slog.DiscardHandler),
	}
}

// Brokers sets the seed brokers. Required.
func Brokers(brokers ...string) Opt { return opt(func(c *cfg) { c.brokers = brokers }) }

// Group sets the consumer group, which is also the application ID: it
// prefixes changelog topics (<group>-<store>-changelog) and transactional
// IDs. Required.
func Group(group string) Opt { return opt(func(c *cfg) { c.group = group }) }

// InstanceID sets this instance's stable identity. The transactional ID is
// <group>-<instance id>, so a restarted instance fences its previous
// incarnation and aborts its open transaction at once; and, unless
// StaticMembership(false), it is the group.instance.id of a static group
// member, so a restart within the session timeout gets the instance's
// partitions back without a rebalance. Two running instances must never
// share an ID. The default value is the host name.
func InstanceID(id string) Opt { return opt(func(c *cfg) { c.instanceID = id }) }

// StateDir sets the directory of the local Pebble state. Required.
func StateDir(dir string) Opt { return opt(func(c *cfg) { c.stateDir = dir }) }

// MaxRecordsPerTxn bounds the input records one transaction processes: a
// bound on the memory a transaction holds (its staged state writes and
// outputs), not its pace, which is the commit interval's. The default
// value, 10000, does not bind at the default commit interval below
// 100,000 records/s, so a transaction spans the commit interval as in
// Kafka Streams; every transaction costs the broker about the same,
// whatever its size, so fewer, larger ones carry more records per second
// (BENCHMARKS.md: 18,400 records/s at 10000 against 8,200 at 1000 on a
// three-node Apache Kafka).
func MaxRecordsPerTxn(n int) Opt { return opt(func(c *cfg) { c.maxRecords = n }) }

// DefaultMaxRecordsPerTxn is MaxRecordsPerTxn's default value.
const DefaultMaxRecordsPerTxn = 10000

// Loops sets how many transaction loops the instance runs. This
// corresponds to the Java num.stream.threads. Each loop is a member of the
// group with its own GroupTransactSession, transactional ID and tasks, and
// uses its own core; all share the instance's local state (one Pebble
// database), its global store replicas and its queries, Stats and HTTP
// surface. Loop 0 has the instance ID, loop i > 0 the instance ID with
// "-loop-<i>" appended (so its transactional ID is
// <group>-<instance id>-loop-<i>), stable across restarts. The loops run
// the topology's node functions at the same time, each for its own tasks:
// a node must keep its state in stores, not in variables the loops share.
// The default value is 1.
func Loops(n int) Opt { return opt(func(c *cfg) { c.loops = n }) }

// maxLoops bounds Loops.
const maxLoops = 64

// loopInstanceID returns the instance ID of loop i of an instance.
func loopInstanceID(instanceID string, i int) string {
	if i == 0 {
		return instanceID
	}
	return instanceID + "-loop-" + strconv.Itoa(i)
}

// CommitInterval bounds how long a transaction stays open collecting
// records. This corresponds to the Java commit.interval.ms of Kafka
// Streams under exactly-once. The default value is 100ms.
func CommitInterval(d time.Duration) Opt { return opt(func(c *cfg) { c.commitInterval = d }) }

// TaskIdle sets how long a task whose inputs are joined (they share a
// store: a table and the stream joined with it) waits for an input that
// has no record buffered before it processes the others. This corresponds
// to the Java max.task.idle.ms. Such a task processes the records of its
// inputs in timestamp order, the lowest first; an input that has nothing
// buffered is always waited for while the broker holds committed records
// of it that the task has not fetched, so over data already in the topics
// (a cold start, a replay) every record meets the others as of its
// timestamp. TaskIdle is how long to wait beyond that for an input that is
// caught up, in case a record with an earlier timestamp is about to be
// written to it: more determinism for live data, paid in latency. The
// default value, 0, waits only for records already written; a negative
// value does not wait at all (processing in arrival order, as the
// processor does for inputs that are not joined).
func TaskIdle(d time.Duration) Opt { return opt(func(c *cfg) { c.taskIdle = d }) }

// TransactionTimeout sets the transaction timeout. This corresponds to the
// Java transaction.timeout.ms. It must exceed the commit interval. The
// default value is 10s.
func TransactionTimeout(d time.Duration) Opt { return opt(func(c *cfg) { c.txnTimeout = d }) }

// FetchMaxWait sets how long a fetch waits for data. This corresponds to
// the Java fetch.max.wait.ms. The default value is 250ms.
func FetchMaxWait(d time.Duration) Opt { return opt(func(c *cfg) { c.fetchMaxWait = d }) }

// DeadLetterTopic sets the topic bad records go to. The default value is
// <group>-dlq.
func DeadLetterTopic(topic string) Opt { return opt(func(c *cfg) { c.dlqTopic = topic }) }

// CreateTopics sets whether missing changelog, sink and dead-letter topics
// are created at start (with the input's partition count). The default
// value is true.
func CreateTopics(create bool) Opt { return opt(func(c *cfg) { c.createTopics = create }) }

// ReplicationFactor sets the replication factor of topics this processor
// creates. The default value is -1 (the broker's default).
func ReplicationFactor(rf int16) Opt { return opt(func(c *cfg) { c.replication = rf }) }

// RestoreTimeout bounds how long the restore of one store partition may go
// without progress: no changelog record read and the group's committed
// offsets not reached (a broker down, a changelog that never catches up).
// The instance then stops with an error wrapping ErrRestoreIncomplete that
// names the store and partition. A restore that keeps reading runs as long
// as it needs. The default value is 60s.
func RestoreTimeout(d time.Duration) Opt { return opt(func(c *cfg) { c.restoreTimeout = d }) }

// RestoreBatchRecords sets how many changelog records a restore applies per
// Pebble batch (each batch also moves the checkpoint). The default value is
// 10000.
func RestoreBatchRecords(n int) Opt { return opt(func(c *cfg) { c.restoreBatch = n }) }

// StateOptions sets the Pebble options of the local state.
func StateOptions(o state.Options) Opt { return opt(func(c *cfg) { c.stateOpts = o }) }

// WithLogger sets the logger; kgo's own logs are bridged into it at warn
// level and above, and its info lines that say why a transaction aborts.
// The default discards.
func WithLogger(l *slog.Logger) Opt { return opt(func(c *cfg) { c.logger = l }) }

// KgoOpts adds kgo client options for the session (TLS, SASL, timeouts).
// Options that would break exactly-once (isolation level, acks,
// idempotence) are refused at start.
func KgoOpts(opts ...kgo.Opt) Opt {
	return opt(func(c *cfg) { c.kgoOpts = append(c.kgoOpts, opts...) })
}

// MaxConsecutiveAborts stops the instance when this many transactions in a
// row abort for the same cause (a rebalance is not a cause). The default
// value is 10.
func MaxConsecutiveAborts(n int) Opt { return opt(func(c *cfg) { c.maxAborts = n }) }

// StartupTimeout bounds how long Run waits for the brokers to answer at
// start before failing. The default value is 30s.
func StartupTimeout(d time.Duration) Opt { return opt(func(c *cfg) { c.startupTimeout = d }) }

// WithHooks injects observation points (tests, metrics). It may be given
// more than once: every Hooks given runs, in the order given (metrics and a
// test's own hooks do not replace each other).
func WithHooks(h Hooks) Opt { return opt(func(c *cfg) { c.hooks = append(c.hooks, h) }) }

func (c *cfg) validate() error {
	switch {
	case len(c.brokers) == 0:
		return configErr("brokers", "no seed brokers given")
	case c.group == "":
		return configErr("group", "no consumer group given")
	case c.stateDir == "":
		return configErr("state dir", "no state directory given")
	case c.maxRecords <= 0:
		return configErr("max records per transaction", "must be positive, got %d", c.maxRecords)
	case c.commitInterval <= 0:
		return configErr("commit interval", "must be positive, got %s", c.commitInterval)
	case c.txnTimeout <= c.commitInterval:
		return configErr("transaction timeout", "%s must exceed the commit interval %s", c.txnTimeout, c.commitInterval)
	case c.restoreTimeout <= 0:
		return configErr("restore timeout", "must be positive, got %s", c.restoreTimeout)
	case c.restoreBatch <= 0:
		return configErr("restore batch records", "must be positive, got %d", c.restoreBatch)
	case c.maxAborts <= 0:
		return configErr("max consecutive aborts", "must be positive, got %d", c.maxAborts)
	case c.startupTimeout <= 0:
		return configErr("startup timeout", "must be positive, got %s", c.startupTimeout)
	case c.resetState && !c.createTopics:
		return configErr("reset state", "the reset deletes the changelogs and creates them again, and topic creation is off")
	case c.policy < DeadLetter || c.policy > Skip:
		return configErr("error policy", "unknown policy %s", c.policy)
	case c.loops < 1 || c.loops > maxLoops:
		return configErr("loops", "want 1 to %d, got %d", maxLoops, c.loops)
	}
	if c.instanceID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return configErr("instance id", "none given and no host name to default to")
		}
		c.instanceID = host
	}
	if c.dlqTopic == "" {
		c.dlqTopic = c.group + "-dlq"
	}
	return nil
}

// TransactionalID returns the transactional ID this configuration uses.
func (c *cfg) transactionalID() string { return c.group + "-" + c.instanceID }

// ChangelogTopic returns the changelog topic of store in application group.
func ChangelogTopic(group, store string) string { return group + "-" + store + "-changelog" }
