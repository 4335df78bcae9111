// Package chaos runs the order service under random failures and checks
// that it stays exactly-once: a randomized soak test.
//
// Run starts several instances of the order service as child processes
// (`<binary> run`), produces orders at a steady rate and, for the
// configured duration, kills instances (SIGKILL) and restarts them, some on
// a wiped state directory, restarts them cleanly, freezes one past its
// session timeout (SIGSTOP, then SIGCONT: a zombie), scales the group up
// and down, and injects broker faults: on the embedded kfake cluster
// through its control API (failed or delayed EndTxn, TxnOffsetCommit,
// Produce, InitProducerID), on a real cluster started by
// integration/kafka/cluster.sh by killing and restarting brokers. On a
// schedule it also runs idle phases (production stops, the group is scaled
// down and up while only newcomers get orders) and operator resets (every
// instance stops, one runs with --reset-state, the others restart on their
// old state directories). Every
// random choice comes from one seed, printed first, so a run can be
// replayed (the choices, not the timing). At the end everything stops
// cleanly, orders.Verify checks E1-E3 and E5 (per reset epoch after
// resets), orders.CheckLocalState checks E4, and the Report counts what
// happened.
package chaos

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/exactly-stream/exactly/kafkaauth"
)

// Config configures Run. Binary is required; every other field has a
// default.
type Config struct {
	// Binary is the exactly command that runs the instances; in
	// ModeRevenue, the revenue example's command
	// (examples/revenue/cmd/revenue); in ModeEnrich, the enrich example's
	// (examples/enrich/cmd/enrich). Required.
	Binary string

	// Mode is what the soak runs: ModePipeline, the order service,
	// ModeMirror, `exactly mirror` instances copying topics from a source
	// cluster to a target cluster (see mirror.go in this package), or
	// ModeRevenue, the revenue example (a repartition and punctuators; see
	// revenue.go in this package), or ModeEnrich, the enrich example (a
	// stream-table join; see enrich.go in this package). The default
	// value is ModePipeline.
	Mode string

	// TaskIdle, when not zero, is passed to the instances as --task-idle
	// (how long a task waits for a caught-up joined input before
	// processing the others past it; negative: never). Enrich mode only.
	// The default value is 0: the instances' default.
	TaskIdle time.Duration

	// Loops, when above 1, is passed to the instances as --loops: each runs
	// that many transaction loops (group members) on one state directory.
	// Not for the mirror mode. The default value is 1.
	Loops int

	// TargetBrokers names the mirror's real target cluster, Brokers its
	// source; both empty run two embedded kfake clusters. Mirror mode
	// only. The default value is empty.
	TargetBrokers []string

	// MirrorTopics is the number of source topics the mirror copies.
	// Mirror mode only. The default value is 3.
	MirrorTopics int

	// Duration is how long failures are injected. The default value is
	// 1m.
	Duration time.Duration

	// Seed seeds every random choice; 0 picks one from the clock. The
	// default value is 0.
	Seed int64

	// Rate is the orders produced per second, from start to the end of
	// Duration. The default value is 300.
	Rate int

	// Customers is the number of distinct customers. The default value is
	// 100.
	Customers int

	// Instances is the number of instances at start; MinInstances and
	// MaxInstances bound scaling. The default values are 3, 1 and 5 (2, 1
	// and 3 in mirror mode).
	Instances, MinInstances, MaxInstances int

	// Partitions is the partition count of the orders and events topics
	// when Run creates them. The default value is 6.
	Partitions int32

	// EventInterval is the mean time between two failures. The default
	// value is 2s.
	EventInterval time.Duration

	// IdleEvery is how often an idle phase starts, the first after half
	// of it: production stops, the pipeline drains, the group is scaled
	// down, then up and down again IdleRounds times while a few orders
	// reach only the instances that joined (the others stay idle: they
	// end no transaction), and production resumes after IdleFor. It looks
	// for state an idle instance keeps for a partition it lost without
	// being told. Negative disables it. The default value is 70s.
	//
	// In mirror mode an idle phase only stops production for IdleFor
	// while the failures go on. The default value is then 20s.
	IdleEvery time.Duration

	// IdleFor is the least time production stops in an idle phase; the
	// scaling may make it longer. The default value is 30s (five session
	// timeouts); 8s in mirror mode.
	IdleFor time.Duration

	// IdleRounds is the number of scale-up-then-down rounds of an idle
	// phase. The default value is 2.
	IdleRounds int

	// ResetEvery is how often an operator reset runs, the first after
	// half of it: production stops, every instance stops cleanly once the
	// pipeline drained, one runs with --reset-state (the changelogs are
	// recreated, its state rebuilt from the group's committed offsets on)
	// until orders of one customer pushed the new changelogs of one
	// partition past the old directories' checkpoints, then the others
	// restart on their old state directories and production resumes. The
	// checks know the reset offsets (orders.VerifyOptions.Resets).
	// Negative disables it. The default value is 50s. Mirror mode has no
	// resets.
	ResetEvery time.Duration

	// ResetRun is the least time the reset instance runs alone before the
	// others restart. The default value is 5s.
	ResetRun time.Duration

	// Brokers names a real cluster; empty runs an embedded kfake cluster.
	// The default value is empty.
	Brokers []string

	// Security secures the connections to Brokers (TLS, SASL): Run's
	// own clients (admin, producer, checks) have its options, and the
	// instances get it through their program's environment variables
	// (EXACTLY_SASL_PASSWORD, ...; in mirror mode EXACTLY_SOURCE_...; in
	// revenue and enrich mode REVENUE_... and ENRICH_...),
	// never on their command lines, which ps shows. The embedded kfake
	// cluster is plain, so it needs Brokers. The default value is a
	// plaintext connection.
	Security kafkaauth.Config

	// TargetSecurity secures the connections to TargetBrokers, in mirror
	// mode, as Security does those to Brokers (the instances read it from
	// EXACTLY_TARGET_...). The default value is a plaintext connection.
	TargetSecurity kafkaauth.Config

	// KafkaDir is the run directory of an integration/kafka/cluster.sh
	// cluster behind Brokers; with it, brokers are killed and restarted.
	// The default value is empty (no broker kills).
	KafkaDir string

	// NoFaults turns off the kfake fault injection. The default value is
	// false.
	NoFaults bool

	// TopicPrefix prefixes the topics and the group. The default value is
	// empty on kfake and "chaos-<seed>-<time>-" on a real cluster.
	TopicPrefix string

	// StateDir is where the instances' state directories go; empty uses a
	// temporary directory removed at the end. The default value is empty.
	StateDir string

	// DrainTimeout bounds how long the pipeline may take to process the
	// remaining input once failures stop. The default value is 3m.
	DrainTimeout time.Duration

	// StopTimeout bounds how long a clean stop (SIGTERM) may take before
	// the instance is killed and reported as a slow stop. The default
	// value is 1m.
	StopTimeout time.Duration

	// Out receives progress lines. The default value discards them.
	Out io.Writer

	// InstanceLogs, when set, receives every instance's log lines,
	// prefixed with its id. The default value is nil (logs are only
	// parsed for the report).
	InstanceLogs io.Writer

	// Logger logs what Run does at debug level. The default discards.
	Logger *slog.Logger
}

// Modes of Config.Mode.
const (
	ModePipeline = "pipeline"
	ModeMirror   = "mirror"
	ModeRevenue  = "revenue"
	ModeEnrich   = "enrich"
)

func (c *Config) ensureDefaults() {
	setDefault(&c.Mode, ModePipeline)
	if c.Mode == ModeMirror {
		setDefault(&c.Instances, 2)
		setDefault(&c.MaxInstances, 3)
		setDefault(&c.IdleEvery, 20*time.Second)
		setDefault(&c.IdleFor, 8*time.Second)
		setDefault(&c.MirrorTopics, 3)
		c.ResetEvery = -1
	}
	if c.Mode == ModeRevenue || c.Mode == ModeEnrich {
		// Its idle phases are the mirror's (production stops, the
		// failures go on); the order service's resets do not apply.
		setDefault(&c.IdleEvery, 30*time.Second)
		setDefault(&c.IdleFor, 12*time.Second)
		c.ResetEvery = -1
	}
	setDefault(&c.Duration, time.Minute)
	setDefault(&c.Rate, 300)
	setDefault(&c.Customers, 100)
	setDefault(&c.Instances, 3)
	setDefault(&c.MinInstances, 1)
	setDefault(&c.MaxInstances, 5)
	setDefault(&c.Partitions, 6)
	setDefault(&c.EventInterval, 2*time.Second)
	setDefault(&c.IdleEvery, 70*time.Second)
	setDefault(&c.IdleFor, 30*time.Second)
	setDefault(&c.IdleRounds, 2)
	setDefault(&c.ResetEvery, 50*time.Second)
	setDefault(&c.ResetRun, 5*time.Second)
	setDefault(&c.DrainTimeout, 3*time.Minute)
	setDefault(&c.StopTimeout, time.Minute)
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano() % 1_000_000_000
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TopicPrefix == "" && (len(c.Brokers) > 0 || len(c.TargetBrokers) > 0) {
		c.TopicPrefix = fmt.Sprintf("chaos-%d-%d-", c.Seed, time.Now().Unix())
	}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// ErrConfig is wrapped by the errors of a bad Config.
var ErrConfig = errors.New("chaos: invalid configuration")

func (c *Config) validate() error {
	switch {
	case c.Mode != ModePipeline && c.Mode != ModeMirror && c.Mode != ModeRevenue && c.Mode != ModeEnrich:
		return fmt.Errorf("%w: mode %q: want %s, %s, %s or %s", ErrConfig, c.Mode, ModePipeline, ModeMirror, ModeRevenue, ModeEnrich)
	case c.Mode == ModeMirror && (len(c.Brokers) == 0) != (len(c.TargetBrokers) == 0):
		return fmt.Errorf("%w: a mirror soak on real clusters needs both the source and the target brokers", ErrConfig)
	case c.Mode != ModePipeline && c.KafkaDir != "":
		return fmt.Errorf("%w: broker kills (a Kafka run directory) are for the pipeline mode only", ErrConfig)
	case c.Mode != ModeMirror && len(c.TargetBrokers) > 0:
		return fmt.Errorf("%w: target brokers are for the mirror mode only", ErrConfig)
	case c.Mode != ModeEnrich && c.TaskIdle != 0:
		return fmt.Errorf("%w: a task idle time is for the enrich mode only", ErrConfig)
	case c.Loops < 0 || c.Loops > 64:
		return fmt.Errorf("%w: loops %d: want 1 to 64", ErrConfig, c.Loops)
	case c.Mode == ModeMirror && c.Loops > 1:
		return fmt.Errorf("%w: loops are not for the mirror mode", ErrConfig)
	case c.MirrorTopics < 0:
		return fmt.Errorf("%w: mirror topics must not be negative", ErrConfig)
	case c.Binary == "":
		return fmt.Errorf("%w: no binary to run the instances with", ErrConfig)
	case c.Duration < 0 || c.Rate < 0 || c.Customers < 0 || c.EventInterval < 0:
		return fmt.Errorf("%w: durations, rate and customers must not be negative", ErrConfig)
	case c.MinInstances < 1 || c.MaxInstances < c.MinInstances:
		return fmt.Errorf("%w: want 1 <= min instances (%d) <= max instances (%d)", ErrConfig, c.MinInstances, c.MaxInstances)
	case c.Instances < c.MinInstances || c.Instances > c.MaxInstances:
		return fmt.Errorf("%w: instances %d outside [%d, %d]", ErrConfig, c.Instances, c.MinInstances, c.MaxInstances)
	case c.IdleFor < 0 || c.IdleRounds < 0 || c.ResetRun < 0:
		return fmt.Errorf("%w: idle time, idle rounds and reset run must not be negative", ErrConfig)
	case c.Mode == ModePipeline && c.IdleEvery > 0 && c.MaxInstances < 2:
		return fmt.Errorf("%w: idle phases scale the group: want max instances >= 2, got %d", ErrConfig, c.MaxInstances)
	case c.Partitions < 1:
		return fmt.Errorf("%w: partitions must be positive, got %d", ErrConfig, c.Partitions)
	case c.KafkaDir != "" && len(c.Brokers) == 0:
		return fmt.Errorf("%w: a Kafka run directory needs the cluster's brokers", ErrConfig)
	case c.Security.Enabled() && len(c.Brokers) == 0:
		return fmt.Errorf("%w: connection security (%s) is for a real cluster: the embedded kfake cluster is plain", ErrConfig, c.Security.Describe())
	case c.TargetSecurity.Enabled() && len(c.TargetBrokers) == 0:
		return fmt.Errorf("%w: target connection security (%s) needs the target brokers (mirror mode)", ErrConfig, c.TargetSecurity.Describe())
	}
	return nil
}
