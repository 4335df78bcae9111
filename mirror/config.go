package mirror

import (
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Opt configures a Mirror.
type Opt interface{ apply(*cfg) }

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

type cfg struct {
	name           string
	sourceBrokers  []string
	targetBrokers  []string
	sourceOpts     []kgo.Opt
	targetOpts     []kgo.Opt
	topics         []string
	topicsRegex    string
	instanceID     string
	group          string // the source group; tests set it apart from the name
	renamePrefix   string
	offsetsTopic   string
	txnTimeout     time.Duration
	commitInterval time.Duration
	maxRecords     int
	fetchMaxWait   time.Duration
	logger         *slog.Logger
}

func defaultCfg(name string) cfg {
	return cfg{
		name:           name,
		instanceID:     "0",
		txnTimeout:     10 * time.Second,
		commitInterval: 100 * time.Millisecond,
		maxRecords:     10000,
		fetchMaxWait:   500 * time.Millisecond,
		logger:         slog.New(slog.DiscardHandler),
	}
}

func (c *cfg) validate() error {
	switch {
	case c.name == "":
		return configErr("a name is required")
	case len(c.sourceBrokers) == 0:
		return configErr("source brokers are required")
	case len(c.targetBrokers) == 0:
		return configErr("target brokers are required")
	case len(c.topics) == 0 && c.topicsRegex == "":
		return configErr("topics or a topics regex are required")
	case len(c.topics) > 0 && c.topicsRegex != "":
		return configErr("topics and a topics regex are exclusive")
	case c.instanceID == "":
		return configErr("the instance ID must not be empty")
	case c.txnTimeout <= c.commitInterval:
		return configErr("transaction timeout %s must exceed the commit interval %s", c.txnTimeout, c.commitInterval)
	case c.maxRecords <= 0:
		return configErr("max records per transaction must be positive")
	}
	if c.topicsRegex != "" {
		if _, err := regexp.Compile(c.topicsRegex); err != nil {
			return configErr("topics regex: %v", err)
		}
	}
	if c.offsetsTopic == "" {
		c.offsetsTopic = c.name + "-mirror-offsets"
	}
	return nil
}

// instance names this instance: its clients' ID, the writer of its
// position records.
func (c *cfg) instance() string { return c.name + "-" + c.instanceID }

// partitionTxnID is the transactional ID of source partition t's copies:
// <name>/<topic>/<partition>. Topic names cannot contain '/', so no two
// partitions (nor two mirrors' partitions) share one. Whoever owns t
// initializes it, which fences every earlier owner of t.
func (c *cfg) partitionTxnID(t tp) string { return c.name + "/" + t.String() }

// sourceGroup is the source consumer group that assigns the partitions.
func (c *cfg) sourceGroup() string {
	if c.group != "" {
		return c.group
	}
	return c.name
}

// targetTopic is the name of source topic t on the target.
func (c *cfg) targetTopic(t string) string { return c.renamePrefix + t }

// selects reports whether source topic t is mirrored.
func (c *cfg) selects(t string, re *regexp.Regexp) bool {
	if re != nil {
		return re.MatchString(t) && !strings.HasPrefix(t, "__")
	}
	for _, s := range c.topics {
		if s == t {
			return true
		}
	}
	return false
}

// SourceBrokers sets the seed brokers of the source cluster. Required.
func SourceBrokers(brokers ...string) Opt {
	return opt(func(c *cfg) { c.sourceBrokers = brokers })
}

// TargetBrokers sets the seed brokers of the target cluster. Required.
func TargetBrokers(brokers ...string) Opt {
	return opt(func(c *cfg) { c.targetBrokers = brokers })
}

// SourceOpts adds kgo options (TLS, SASL, dialer) to the source clients.
// Isolation level, group and offset options are the mirror's and are set
// after these. The default value is none.
func SourceOpts(opts ...kgo.Opt) Opt {
	return opt(func(c *cfg) { c.sourceOpts = append(c.sourceOpts, opts...) })
}

// TargetOpts adds kgo options (TLS, SASL, dialer) to the target clients.
// The transactional ID, partitioner and transaction timeout are the
// mirror's and are set after these. RecordDeliveryTimeout is refused: kgo
// counts it from the record timestamp, which the mirror copies from the
// source, so old records would expire. The default value is none.
func TargetOpts(opts ...kgo.Opt) Opt {
	return opt(func(c *cfg) { c.targetOpts = append(c.targetOpts, opts...) })
}

// Topics sets the source topics to mirror. Exclusive with TopicsRegex.
func Topics(topics ...string) Opt { return opt(func(c *cfg) { c.topics = topics }) }

// TopicsRegex mirrors every source topic matching re (internal topics,
// named with a leading "__", excepted); topics created later are picked up.
// Exclusive with Topics.
func TopicsRegex(re string) Opt { return opt(func(c *cfg) { c.topicsRegex = re }) }

// InstanceID names this instance (its clients' ID is <name>-<instance id>
// and its position records say it wrote them). Fencing does not depend on
// it: every source partition has its own transactional ID,
// <name>/<topic>/<partition>, which its owner initializes on assignment.
// The default value is "0".
func InstanceID(id string) Opt { return opt(func(c *cfg) { c.instanceID = id }) }

// RenamePrefix prefixes every target topic's name. The default value is
// empty: same names.
func RenamePrefix(p string) Opt { return opt(func(c *cfg) { c.renamePrefix = p }) }

// OffsetsTopic sets the compacted topic on the target that holds the
// mirror's source positions. The default value is <name>-mirror-offsets.
func OffsetsTopic(t string) Opt { return opt(func(c *cfg) { c.offsetsTopic = t }) }

// TransactionTimeout bounds a target transaction, and so the delivery of
// its records. This corresponds to the Java transaction.timeout.ms. The
// default value is 10s.
func TransactionTimeout(d time.Duration) Opt { return opt(func(c *cfg) { c.txnTimeout = d }) }

// CommitInterval is how long a transaction collects records before it
// commits. The default value is 100ms.
func CommitInterval(d time.Duration) Opt { return opt(func(c *cfg) { c.commitInterval = d }) }

// MaxRecordsPerTxn bounds the records of one transaction. The default
// value is 10000.
func MaxRecordsPerTxn(n int) Opt { return opt(func(c *cfg) { c.maxRecords = n }) }

// FetchMaxWait is how long a source fetch waits for data. This corresponds
// to the Java fetch.max.wait.ms. The default value is 500ms.
func FetchMaxWait(d time.Duration) Opt { return opt(func(c *cfg) { c.fetchMaxWait = d }) }

// WithLogger sets the logger. The default value discards.
func WithLogger(l *slog.Logger) Opt { return opt(func(c *cfg) { c.logger = l }) }
