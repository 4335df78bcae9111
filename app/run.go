package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/httpapi"
	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// runConfig is what `run` and `reset` need to start one instance.
type runConfig struct {
	service        string
	brokers        string
	group          string
	instanceID     string
	stateDir       string
	maxRecords     int
	commitInterval time.Duration
	taskIdle       time.Duration
	txnTimeout     time.Duration
	createTopics   bool
	replication    int
	topicPrefix    string
	sessionTimeout time.Duration
	connectTimeout time.Duration
	restoreBatch   int
	stateCacheMB   int
	loops          int
	blockCacheMB   int
	errorPolicy    string
	resetState     bool
	httpAddr       string
	security       *kafkaauth.Flags
	httpSec        httpConfig   // http_flags.go
	membership     memberConfig // membership_flags.go
}

// runFlags declares the flags of run (and of reset, which has no
// --reset-state: it always resets).
func (k *kit) runFlags(fs *flagSet, c *runConfig, reset bool) {
	if len(k.services) > 1 {
		fs.StringVar(&c.service, "service", k.services[0].Name, "which service to run: "+k.serviceNames())
	}
	fs.StringVar(&c.brokers, "brokers", "", "comma-separated seed brokers (required)")
	fs.StringVar(&c.group, "group", "", "consumer group and application id (default: "+k.defaultGroups()+")")
	fs.StringVar(&c.instanceID, "instance-id", "", "stable instance id; the transactional id is <group>-<instance id> (default: the host name)")
	fs.StringVar(&c.stateDir, "state-dir", "", "directory of the local state (required)")
	fs.IntVar(&c.maxRecords, "max-records", processor.DefaultMaxRecordsPerTxn, "input records per transaction at most: a bound on a transaction's memory; --commit-interval sets its pace")
	fs.DurationVar(&c.commitInterval, "commit-interval", 100*time.Millisecond, "how long a transaction collects records at most")
	fs.DurationVar(&c.taskIdle, "task-idle", 0, "for inputs a topology joins: how long to wait for a caught-up input before processing the others past it (Java max.task.idle.ms); inputs with committed records not fetched yet are always waited for; negative: never wait")
	fs.DurationVar(&c.txnTimeout, "transaction-timeout", 10*time.Second, "transaction timeout (Java transaction.timeout.ms); must exceed --commit-interval")
	fs.BoolVar(&c.createTopics, "create-topics", true, "create missing changelog, output and dead-letter topics")
	fs.IntVar(&c.replication, "replication-factor", -1, "replication factor of created topics (-1: broker default)")
	fs.StringVar(&c.topicPrefix, "topic-prefix", "", "prefix of every topic and default group name (several pipelines on one cluster)")
	fs.DurationVar(&c.sessionTimeout, "session-timeout", 45*time.Second, "group session timeout (Java session.timeout.ms)")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 30*time.Second, "how long to wait for a broker to answer before giving up")
	fs.IntVar(&c.restoreBatch, "restore-batch", 10000, "changelog records per restore batch")
	fs.IntVar(&c.loops, "loops", 1, "transaction loops in this instance (Java num.stream.threads): each a group member on its own core with its own transactional ID (<group>-<instance id>-loop-<i> for i > 0), all sharing the local state")
	fs.IntVar(&c.stateCacheMB, "state-cache-mb", 16, "MiB of committed store values kept in memory for reads (Java statestore.cache.max.bytes, for reads); 0 turns the cache off")
	fs.IntVar(&c.blockCacheMB, "block-cache-mb", 64, "MiB of Pebble's block cache for the local state's tables")
	fs.StringVar(&c.errorPolicy, "error-policy", "dead-letter", "what to do with a bad record: dead-letter, fail or skip")
	fs.StringVar(&c.httpAddr, "http-addr", "", "serve /metrics, /healthz, /readyz and /state/{store}/{key} on this address (e.g. :9100)")
	fs.alias("metrics-addr", "http-addr", "the older name of --http-addr")
	httpFlags(fs, &c.httpSec)
	memberFlags(fs, &c.membership)
	if !reset {
		fs.BoolVar(&c.resetState, "reset-state", false, "first reset, as the reset command does")
	}
	c.security = securityFlags(fs)
}

func (k *kit) serviceNames() string {
	names := make([]string, len(k.services))
	for i, s := range k.services {
		names[i] = s.Name
	}
	return strings.Join(names, " or ")
}

// defaultGroups says which group each service runs in by default.
func (k *kit) defaultGroups() string {
	if len(k.services) == 1 {
		return k.services[0].Group + ", after any --topic-prefix"
	}
	var parts []string
	for _, s := range k.services {
		parts = append(parts, s.Group+" for "+s.Name)
	}
	return strings.Join(parts, ", ") + "; after any --topic-prefix"
}

// validate checks what processor.New would refuse, naming the flag or
// environment variable at fault.
func (c *runConfig) validate(fs *flagSet) error {
	switch {
	case len(SplitBrokers(c.brokers)) == 0:
		return Usagef("--brokers (or %s) is required", fs.envName("brokers"))
	case c.stateDir == "":
		return Usagef("--state-dir (or %s) is required", fs.envName("state-dir"))
	case c.maxRecords <= 0:
		return fs.usagef("max-records", "want a positive count, got %d", c.maxRecords)
	case c.commitInterval <= 0:
		return fs.usagef("commit-interval", "want a positive duration, got %s", c.commitInterval)
	case c.txnTimeout <= c.commitInterval:
		return fs.usagef("transaction-timeout", "the transaction timeout %s must exceed the commit interval %s (%s)", c.txnTimeout, c.commitInterval, fs.origin("commit-interval"))
	case c.sessionTimeout < time.Second:
		return fs.usagef("session-timeout", "want at least 1s, got %s", c.sessionTimeout)
	case c.connectTimeout <= 0:
		return fs.usagef("connect-timeout", "want a positive duration, got %s", c.connectTimeout)
	case c.replication < -1 || c.replication == 0 || c.replication > 32767:
		return fs.usagef("replication-factor", "want -1 or 1..32767, got %d", c.replication)
	case c.restoreBatch <= 0:
		return fs.usagef("restore-batch", "want a positive count, got %d", c.restoreBatch)
	case c.loops < 1 || c.loops > 64:
		return fs.usagef("loops", "want 1 to 64, got %d", c.loops)
	case c.stateCacheMB < 0 || c.stateCacheMB > 1<<20:
		return fs.usagef("state-cache-mb", "want 0 (off) to %d MiB, got %d", 1<<20, c.stateCacheMB)
	case c.blockCacheMB < 1 || c.blockCacheMB > 1<<20:
		return fs.usagef("block-cache-mb", "want 1 to %d MiB, got %d", 1<<20, c.blockCacheMB)
	}
	return nil
}

// stateOptions returns the local state's options from the cache flags.
func (c *runConfig) stateOptions() state.Options {
	o := state.Options{CacheSize: int64(c.blockCacheMB) << 20, ValueCacheSize: int64(c.stateCacheMB) << 20}
	if c.stateCacheMB == 0 {
		o.ValueCacheSize = -1 // off; 0 is the default
	}
	return o
}

// service returns the service named name; "" is the first.
func (k *kit) service(fs *flagSet, name string) (Service, error) {
	for _, s := range k.services {
		if name == "" || s.Name == name {
			return s, nil
		}
	}
	return Service{}, fs.usagef("service", "want %s, got %q", k.serviceNames(), name)
}

// resolve builds the service's topology with topic prefix prefix and
// returns it with its group (group if set, else the prefixed default) and
// dead-letter topic.
func (s Service) resolve(prefix, group string) (*topology.Topology, string, string, error) {
	t, err := s.Topology(prefix)
	if err != nil {
		return nil, "", "", fmt.Errorf("building the topology of %s: %w", s.Name, err)
	}
	if group == "" {
		group = prefix + s.Group
	}
	dlq := group + "-dlq"
	if s.DeadLetterTopic != "" {
		dlq = prefix + s.DeadLetterTopic
	}
	return t, group, dlq, nil
}

// runSetup is the setup of run (reset false) and reset.
func (k *kit) runSetup(reset bool) func(fs *flagSet, _ string) Runner {
	return func(fs *flagSet, _ string) Runner {
		var c runConfig
		k.runFlags(fs, &c, reset)
		logger := logFlags(fs, k.stderr)
		return func(ctx context.Context, _ io.Writer) error {
			log, err := logger()
			if err != nil {
				return err
			}
			c.resetState = c.resetState || reset
			return k.run(ctx, fs, &c, log)
		}
	}
}

// run runs one instance until ctx is cancelled: it validates the
// configuration, waits for a broker to answer (nothing, not even the state
// directory, is created before), serves HTTP if asked and runs the
// processor.
func (k *kit) run(ctx context.Context, fs *flagSet, c *runConfig, log *slog.Logger) error {
	svc, err := k.service(fs, c.service)
	if err != nil {
		return err
	}
	if err := c.validate(fs); err != nil {
		return err
	}
	policy, err := processor.ParseErrorPolicy(c.errorPolicy)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUsage, fs.origin("error-policy"), err)
	}
	httpSec, err := c.httpSec.load(fs, c.httpAddr, log)
	if err != nil {
		return err
	}
	topo, group, dlq, err := svc.resolve(c.topicPrefix, c.group)
	if err != nil {
		return err
	}
	secOpts, err := c.security.Opts()
	if err != nil {
		return err
	}
	api := httpapi.New(group)
	brokers := SplitBrokers(c.brokers)
	opts := []processor.Opt{
		processor.WithLogger(log), processor.WithHooks(api.Hooks()),
		processor.OnBadRecord(policy),
		processor.RestoreBatchRecords(c.restoreBatch),
		processor.ResetState(c.resetState),
		processor.Brokers(brokers...),
		processor.Group(group),
		processor.InstanceID(c.instanceID),
		processor.StateDir(c.stateDir),
		processor.StateOptions(c.stateOptions()),
		processor.MaxRecordsPerTxn(c.maxRecords),
		processor.Loops(c.loops),
		processor.CommitInterval(c.commitInterval),
		processor.TaskIdle(c.taskIdle),
		processor.TransactionTimeout(c.txnTimeout),
		processor.DeadLetterTopic(dlq),
		processor.CreateTopics(c.createTopics),
		processor.ReplicationFactor(int16(c.replication)),
		processor.KgoOpts(kgo.SessionTimeout(c.sessionTimeout), kgo.HeartbeatInterval(c.sessionTimeout/15)),
		processor.KgoOpts(secOpts...),
	}
	opts = append(opts, c.membership.options()...)
	opts = append(append(opts, k.cfg.Options...), svc.Options...)
	p, err := processor.New(topo, opts...)
	if err != nil {
		return configError(err)
	}
	api.Attach(p)
	if err := pingBrokers(ctx, fs, brokers, c.connectTimeout, secOpts...); err != nil || ctx.Err() != nil {
		return err // a cancelled ctx while waiting is a clean stop
	}
	log.Info("starting", "service", svc.Name, "group", group, "transactional_id", p.TransactionalID(), "loops", c.loops, "reset_state", c.resetState)
	if c.httpAddr != "" {
		stop, err := serve(ctx, fs, c.httpAddr, httpSec.tls, api.Handler(httpSec.opts...), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := p.Run(ctx); err != nil {
		return configError(err) // a missing source topic, creation off with a topic missing
	}
	s := p.Stats()
	log.Info("stopped", "committed", s.Committed, "aborted", s.Aborted, "records", s.Records, "dead_lettered", s.DeadLettered)
	return nil
}

// configError marks an error of the processor that wraps
// processor.ErrConfig as a configuration error (exit status 2), whether
// New found it or Run once the brokers answered.
func configError(err error) error {
	if errors.Is(err, processor.ErrConfig) {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return err
}
