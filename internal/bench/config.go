package bench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/exactly-stream/exactly/kafkaauth"
)

// Parts of a Run, for Config.Skip.
const (
	PartPipeline = "pipeline" // exactly-once throughput grid
	PartCeiling  = "ceiling"  // bare transactional loop
	PartALO      = "alo"      // at-least-once loop
	PartLatency  = "latency"
	PartRestore  = "restore"
	PartRSS      = "rss"
	PartScaling  = "scaling"
)

// PartMirror is the mirror suite's throughput grid (mirror.Mirror, one
// instance); the suite's ceiling, latency and scaling parts go by the
// pipeline suite's names.
const PartMirror = "mirror"

// AllParts lists every part of the pipeline suite in the order Run
// measures them.
var AllParts = []string{PartPipeline, PartCeiling, PartALO, PartLatency, PartRestore, PartRSS, PartScaling}

// MirrorParts lists every part of the mirror suite in the order Run
// measures them.
var MirrorParts = []string{PartMirror, PartCeiling, PartLatency, PartScaling}

// Suites of Config.Suite.
const (
	SuitePipeline = "pipeline" // the order pipeline of the reference application
	SuiteMirror   = "mirror"   // mirror.Mirror between two clusters (mirror.go)
)

// Config configures Run. Start from DefaultConfig or QuickConfig.
type Config struct {
	// Suite is what is measured: SuitePipeline (the default when empty)
	// or SuiteMirror.
	Suite string
	// Brokers are the seed brokers of the cluster to measure on; empty runs
	// an embedded kfake cluster in this process. In the mirror suite it is
	// the source cluster.
	Brokers []string
	// TargetBrokers are the mirror suite's target cluster. Empty with
	// Brokers set: the target is the source cluster, its topics renamed;
	// empty without Brokers: a second embedded kfake cluster.
	TargetBrokers []string
	// Security secures the connections to Brokers (TLS, SASL): every
	// client Run creates has its options, and the RSS child gets it
	// through its EXACTLY_ environment variables, never its command line.
	// The embedded kfake cluster is plain, so it needs Brokers. The
	// default value is a plaintext connection.
	Security kafkaauth.Config
	// TargetSecurity secures the connections to TargetBrokers, the mirror
	// suite's target; with Brokers alone the target is the source cluster
	// and Security applies. The default value is a plaintext connection.
	TargetSecurity kafkaauth.Config
	// KfakeBrokers is the number of brokers of the embedded cluster.
	KfakeBrokers int
	// Partitions of every topic created. More partitions than instances,
	// so that the scaling runs have work to spread.
	Partitions int32
	// Replication is the replication factor of created topics; -1 is the
	// broker's default.
	Replication int16
	// TopicPrefix prefixes every topic and group; it should differ between
	// runs on one real cluster.
	TopicPrefix string
	// KeepTopics keeps the topics and groups of each run instead of
	// deleting them after it.
	KeepTopics bool

	// Orders and Customers shape the input of the throughput runs (no
	// malformed records, no duplicates); Seed makes it reproducible.
	Orders    int
	Customers int
	Seed      int64

	// TxnSizes (processor.MaxRecordsPerTxn) and CommitIntervals span the
	// throughput grid.
	TxnSizes        []int
	CommitIntervals []time.Duration

	// LatencyDuration is how long orders are produced for the latency run;
	// LatencyRate is their rate, 0 for half the pipeline's throughput at
	// LatencyTxnSize and LatencyCommitInterval. LatencyTxnSize and
	// LatencyCommitInterval configure the pipeline of that run. Orders
	// are produced for LatencyWarmup first, at the same rate, and their
	// events are not counted: the first transactions of a fresh instance
	// on fresh topics pay for metadata and connections.
	LatencyWarmup         time.Duration
	LatencyDuration       time.Duration
	LatencyRate           int
	LatencyTxnSize        int
	LatencyCommitInterval time.Duration

	// MirrorRecords is the number of records the mirror suite pre-fills
	// its source topic with (Partitions partitions, round robin), and
	// MirrorValueBytes the size of each value (keys are 8 bytes).
	MirrorRecords    int
	MirrorValueBytes int

	// RestoreCustomers is the number of customers (distinct keys) whose
	// state is restored, and RSSOrders the orders the RSS child processes
	// after restoring them.
	RestoreCustomers int
	RSSOrders        int
	// Exe is the exactly binary run as the RSS child (`exactly run`); empty
	// skips the RSS part.
	Exe string

	// Instances lists the instance counts of the scaling runs, at
	// ScaleTxnSize and ScaleCommitInterval.
	Instances []int
	// Loops is the transaction loops of every exactly instance of the
	// pipeline suite (processor.Loops). The default value is 1.
	Loops               int
	ScaleTxnSize        int
	ScaleCommitInterval time.Duration

	// Repeat runs every throughput and scaling measurement this many
	// times, in rounds, and reports the median: on a shared machine one
	// run can catch a burst of someone else's load. 0 means 1.
	Repeat int

	// Peer names a peer measured side by side with exactly: "" (none) or
	// PeerKStreams. The default value is "".
	Peer string
	// PeerJar is the Kafka Streams peer's runnable jar. The default value
	// is DefaultPeerJar.
	PeerJar string
	// PeerInstances are the counts of exactly instances and of Kafka
	// Streams threads (num.stream.threads, one JVM) of the side-by-side
	// runs. The default value is 1,2.
	PeerInstances []int
	// PeerLoops runs the exactly side of each side-by-side run as one
	// instance of that many transaction loops (processor.Loops) instead of
	// that many instances: threads of one process on both sides. The
	// default value is false.
	PeerLoops bool
	// PeerTxnSize is the records per transaction of both sides in the
	// equal-transaction-size runs (PeerModeEqual). The default value is
	// 1000.
	PeerTxnSize int

	// Skip names parts not to run (see AllParts).
	Skip []string
	// RunTimeout bounds each single run.
	RunTimeout time.Duration
	// Dir holds the state directories; empty is the system's temporary
	// directory. Everything created there is removed.
	Dir string

	// Log receives the instances' logs; nil discards. Progress, if not
	// nil, receives one line per measurement.
	Log      *slog.Logger
	Progress io.Writer
}

// DefaultConfig returns the configuration of a full run.
func DefaultConfig() Config {
	return Config{
		KfakeBrokers:          3,
		Partitions:            6,
		Replication:           -1,
		TopicPrefix:           fmt.Sprintf("bench-%d-", time.Now().Unix()),
		Orders:                200_000,
		Customers:             1000,
		Seed:                  1,
		TxnSizes:              []int{100, 1000, 10000},
		CommitIntervals:       []time.Duration{100 * time.Millisecond, time.Second},
		LatencyWarmup:         2 * time.Second,
		LatencyDuration:       20 * time.Second,
		LatencyTxnSize:        1000,
		LatencyCommitInterval: 100 * time.Millisecond,
		MirrorRecords:         1_000_000,
		MirrorValueBytes:      100,
		RestoreCustomers:      1_000_000,
		RSSOrders:             10_000,
		Instances:             []int{1, 2, 3},
		Loops:                 1,
		ScaleTxnSize:          1000,
		ScaleCommitInterval:   100 * time.Millisecond,
		RunTimeout:            10 * time.Minute,
		PeerJar:               DefaultPeerJar,
		PeerInstances:         []int{1, 2},
		PeerTxnSize:           1000,
	}
}

// QuickConfig returns a configuration that runs every part in about a
// minute on two cores, with the full run's 200 orders per customer: a
// smoke test of the whole bench and a rough trend, not figures to quote.
func QuickConfig() Config {
	c := DefaultConfig()
	c.Orders = 40_000
	c.Customers = 200
	c.LatencyDuration = 5 * time.Second
	c.MirrorRecords = 100_000
	c.RestoreCustomers = 100_000
	c.RSSOrders = 2000
	c.RunTimeout = 2 * time.Minute
	return c
}

// Validate reports the first bad field, named by its flag (AddFlags).
func (c *Config) Validate() error {
	switch {
	case c.Suite != "" && c.Suite != SuitePipeline && c.Suite != SuiteMirror:
		return fmt.Errorf("--suite: want %s or %s, got %q", SuitePipeline, SuiteMirror, c.Suite)
	case len(c.TargetBrokers) > 0 && c.Suite != SuiteMirror:
		return fmt.Errorf("--target-brokers: only the %s suite has a target cluster", SuiteMirror)
	case len(c.TargetBrokers) > 0 && len(c.Brokers) == 0:
		return errors.New("--target-brokers: needs --brokers, the source cluster")
	case c.Security.Enabled() && len(c.Brokers) == 0:
		return fmt.Errorf("--brokers: is required with connection security (%s): the embedded kfake cluster is plain", c.Security.Describe())
	case c.TargetSecurity.Enabled() && len(c.TargetBrokers) == 0:
		return fmt.Errorf("--target-brokers: is required with target connection security (%s)", c.TargetSecurity.Describe())
	case c.MirrorRecords < 1:
		return fmt.Errorf("--mirror-records: want at least 1, got %d", c.MirrorRecords)
	case c.MirrorValueBytes < 8:
		return fmt.Errorf("--mirror-value-bytes: want at least 8 (the latency run's send time), got %d", c.MirrorValueBytes)
	case len(c.Brokers) == 0 && c.KfakeBrokers < 1:
		return fmt.Errorf("--kfake-brokers: want at least 1, got %d", c.KfakeBrokers)
	case c.Partitions < 1:
		return fmt.Errorf("--partitions: want at least 1, got %d", c.Partitions)
	case c.Replication < -1 || c.Replication == 0:
		return fmt.Errorf("--replication-factor: want -1 or at least 1, got %d", c.Replication)
	case c.Orders < 1:
		return fmt.Errorf("--orders: want at least 1, got %d", c.Orders)
	case c.Customers < 1:
		return fmt.Errorf("--customers: want at least 1, got %d", c.Customers)
	case len(c.TxnSizes) == 0 || slices.Min(c.TxnSizes) < 1:
		return fmt.Errorf("--txn-sizes: want positive sizes, got %v", c.TxnSizes)
	case len(c.CommitIntervals) == 0 || slices.Min(c.CommitIntervals) <= 0:
		return fmt.Errorf("--commit-intervals: want positive intervals, got %v", c.CommitIntervals)
	case c.LatencyDuration <= 0:
		return fmt.Errorf("--latency-duration: want a positive duration, got %s", c.LatencyDuration)
	case c.LatencyWarmup < 0:
		return fmt.Errorf("--latency-warmup: want 0 or more, got %s", c.LatencyWarmup)
	case c.LatencyRate < 0:
		return fmt.Errorf("--latency-rate: want 0 or more, got %d", c.LatencyRate)
	case c.LatencyTxnSize < 1:
		return fmt.Errorf("--latency-txn-size: want at least 1, got %d", c.LatencyTxnSize)
	case c.LatencyCommitInterval <= 0:
		return fmt.Errorf("--latency-commit-interval: want a positive duration, got %s", c.LatencyCommitInterval)
	case c.RestoreCustomers < 1:
		return fmt.Errorf("--restore-customers: want at least 1, got %d", c.RestoreCustomers)
	case c.RSSOrders < 1:
		return fmt.Errorf("--rss-orders: want at least 1, got %d", c.RSSOrders)
	case c.Loops < 1 || c.Loops > 64:
		return fmt.Errorf("--loops: want 1 to 64, got %d", c.Loops)
	case len(c.Instances) == 0 || slices.Min(c.Instances) < 1:
		return fmt.Errorf("--instances: want positive counts, got %v", c.Instances)
	case c.ScaleTxnSize < 1:
		return fmt.Errorf("--scale-txn-size: want at least 1, got %d", c.ScaleTxnSize)
	case c.ScaleCommitInterval <= 0:
		return fmt.Errorf("--scale-commit-interval: want a positive duration, got %s", c.ScaleCommitInterval)
	case c.Repeat < 0:
		return fmt.Errorf("--repeat: want 1 or more, got %d", c.Repeat)
	case c.Peer != "" && c.Peer != PeerKStreams:
		return fmt.Errorf("--peer: want %s or nothing, got %q", PeerKStreams, c.Peer)
	case c.Peer != "" && len(c.Brokers) == 0:
		return fmt.Errorf("--peer: the %s peer needs --brokers: Kafka Streams does not run on the embedded kfake cluster", c.Peer)
	case c.Peer != "" && c.Security.Enabled():
		return fmt.Errorf("--peer: the %s peer connects in plaintext only, not with %s", c.Peer, c.Security.Describe())
	case c.Peer != "" && (len(c.PeerInstances) == 0 || slices.Min(c.PeerInstances) < 1):
		return fmt.Errorf("--peer-instances: want positive counts, got %v", c.PeerInstances)
	case c.Peer != "" && c.PeerTxnSize < 1:
		return fmt.Errorf("--peer-txn-size: want at least 1, got %d", c.PeerTxnSize)
	case c.RunTimeout <= 0:
		return fmt.Errorf("--run-timeout: want a positive duration, got %s", c.RunTimeout)
	}
	parts := c.parts()
	for _, s := range c.Skip {
		if !slices.Contains(parts, s) {
			return fmt.Errorf("--skip: unknown part %q of the %s suite, want some of %s", s, c.suite(), strings.Join(parts, ","))
		}
	}
	return nil
}

func (c *Config) suite() string { return cmp.Or(c.Suite, SuitePipeline) }

// parts lists the parts of the configured suite.
func (c *Config) parts() []string {
	if c.suite() == SuiteMirror {
		return MirrorParts
	}
	return AllParts
}

func (c *Config) repeat() int { return max(1, c.Repeat) }

// runs reports whether part is to be run.
func (c *Config) runs(part string) bool {
	if part == PartRSS && c.Exe == "" {
		return false
	}
	return !slices.Contains(c.Skip, part)
}

func (c *Config) logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

func (c *Config) progressf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}
