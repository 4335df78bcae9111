package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/internal/chaos"
	"github.com/exactly-stream/exactly/kafkaauth"
)

// chaosCommand is `exactly chaos`: a randomized soak of the order service
// (see package chaos). It runs this same binary as the instances and exits
// 3 when the checks find a violation.
var chaosCommand = app.Command{
	Name:    "chaos",
	Summary: "randomized soak: crashes, restarts, scaling, zombies and broker faults, then verify",
	Description: "Run a randomized soak of the order service: instances of this binary are started, crashed, " +
		"restarted, scaled and reset while orders flow and (on the embedded cluster) broker faults are injected; " +
		"then the pipeline drains and exactly-once is verified. With --mode mirror it soaks `exactly mirror` instead: " +
		"instances copy topics between two clusters (two embedded kfake clusters, or --brokers and --target-brokers) " +
		"while transactions are committed and aborted on the source, then source and target are compared record by " +
		"record. The --tls and --sasl-* flags secure the connections to --brokers, the --target-tls and --target-sasl-* " +
		"flags those to --target-brokers; the instances get them through their EXACTLY_ environment variables, never " +
		"on their command lines. It exits 3 when the checks find a violation.",
	Setup: chaosSetup,
}

func chaosSetup(fs *flag.FlagSet) app.Runner {
	var c chaos.Config
	fs.StringVar(&c.Mode, "mode", chaos.ModePipeline, "what to soak: pipeline (the order service), mirror (exactly mirror between two clusters) revenue (the revenue example's command, given with --instance-binary: a repartition and punctuators) or enrich (the enrich example's command, given with --instance-binary: a stream-table join)")
	targetBrokers := fs.String("target-brokers", "", "mirror mode: the real target cluster's seed brokers, --brokers being the source (default: two embedded kfake clusters)")
	fs.IntVar(&c.MirrorTopics, "mirror-topics", 3, "mirror mode: source topics to mirror")
	fs.IntVar(&c.Loops, "loops", 1, "transaction loops per instance (their --loops); not for the mirror mode")
	fs.DurationVar(&c.Duration, "duration", time.Minute, "how long failures are injected")
	fs.Int64Var(&c.Seed, "seed", 0, "seed of every random choice (0: from the clock; the seed is printed)")
	fs.IntVar(&c.Rate, "rate", 300, "orders produced per second")
	fs.IntVar(&c.Customers, "customers", 100, "distinct customers")
	fs.IntVar(&c.Instances, "instances", 3, "instances at start (mirror mode: 2)")
	fs.IntVar(&c.MinInstances, "min-instances", 1, "fewest instances when scaling down")
	fs.IntVar(&c.MaxInstances, "max-instances", 5, "most instances when scaling up (mirror mode: 3)")
	partitions := fs.Int("partitions", 6, "partitions of the orders and events topics, when created")
	fs.DurationVar(&c.EventInterval, "event-interval", 2*time.Second, "mean time between two failures")
	fs.DurationVar(&c.IdleEvery, "idle-every", 70*time.Second, "how often an idle phase starts, the first after half of it (0: none): production stops, the group scales down, then up and down while only newcomers get orders")
	fs.DurationVar(&c.IdleFor, "idle-for", 30*time.Second, "least time production stops in an idle phase (the instances' session timeout is 6s; mirror mode: 8s, every 20s, failures going on)")
	fs.IntVar(&c.IdleRounds, "idle-rounds", 2, "scale-up-then-down rounds in each idle phase")
	fs.DurationVar(&c.ResetEvery, "reset-every", 50*time.Second, "how often an operator reset runs, the first after half of it (0: none): production and all instances stop, one runs with --reset-state, the others restart on their old state dirs")
	fs.DurationVar(&c.ResetRun, "reset-run", 5*time.Second, "least time the reset instance runs alone before the others restart")
	brokers := fs.String("brokers", "", "a real cluster's seed brokers (default: an embedded kfake cluster)")
	fs.StringVar(&c.KafkaDir, "kafka-dir", "", "run directory of an integration/kafka/cluster.sh cluster behind --brokers: kill and restart its brokers")
	noFaults := fs.Bool("no-faults", false, "inject no kfake broker faults")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", "", "prefix of the topics and group (default: none on kfake, chaos-<seed>-<time>- on a real cluster)")
	fs.StringVar(&c.StateDir, "state-dir", "", "where the instances' state goes (default: a temporary directory, removed)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 3*time.Minute, "how long the pipeline may take to catch up once the failures stop")
	fs.DurationVar(&c.TaskIdle, "task-idle", 0, "enrich mode: --task-idle for the instances (how long a task waits for a caught-up joined input; negative: never; default: theirs, 0)")
	instanceLogs := fs.Bool("instance-logs", false, "copy the instances' logs to stderr")
	instanceBinary := fs.String("instance-binary", "", "the exactly binary that runs the instances (default: this one); make chaos gives one built with the race detector")
	sec, targetSec := kafkaauth.RegisterFlags(fs, ""), kafkaauth.RegisterFlags(fs, "target-")
	return func(ctx context.Context, stdout io.Writer) error {
		if err := chaosSecurity(&c, sec, targetSec, *brokers, *targetBrokers); err != nil {
			return err
		}
		if *partitions < 1 || *partitions > 1000 {
			return app.Usagef("--partitions: want 1..1000, got %d", *partitions)
		}
		c.Partitions = int32(*partitions)
		switch c.Mode {
		case chaos.ModeRevenue, chaos.ModeEnrich:
			if *instanceBinary == "" {
				return app.Usagef("--instance-binary: --mode %s runs the %s example's command (go build ./examples/%s/cmd/%s); name it", c.Mode, c.Mode, c.Mode, c.Mode)
			}
			if c.KafkaDir != "" {
				return app.Usagef("--kafka-dir: broker kills are for --mode pipeline only")
			}
			fallthrough
		case chaos.ModePipeline:
			if c.TaskIdle != 0 && c.Mode != chaos.ModeEnrich {
				return app.Usagef("--task-idle: only with --mode enrich")
			}
			if *targetBrokers != "" {
				return app.Usagef("--target-brokers: only with --mode mirror")
			}
		case chaos.ModeMirror:
			if c.TaskIdle != 0 {
				return app.Usagef("--task-idle: only with --mode enrich")
			}
			if (*brokers == "") != (*targetBrokers == "") {
				return app.Usagef("--target-brokers: a mirror soak on real clusters needs both --brokers (the source) and --target-brokers")
			}
			if c.KafkaDir != "" {
				return app.Usagef("--kafka-dir: broker kills are for --mode pipeline only")
			}
			if c.Loops > 1 {
				return app.Usagef("--loops: not for --mode mirror (a mirror instance has one producer per source partition)")
			}
			if c.MirrorTopics < 1 || c.MirrorTopics > 100 {
				return app.Usagef("--mirror-topics: want 1..100, got %d", c.MirrorTopics)
			}
		default:
			return app.Usagef("--mode: want %s, %s, %s or %s, got %q", chaos.ModePipeline, chaos.ModeMirror, chaos.ModeRevenue, chaos.ModeEnrich, c.Mode)
		}
		if c.Loops < 1 || c.Loops > 64 {
			return app.Usagef("--loops: want 1 to 64, got %d", c.Loops)
		}
		c.TargetBrokers = app.SplitBrokers(*targetBrokers)
		if c.IdleEvery == 0 {
			c.IdleEvery = -1 // Config's zero means the default
		}
		if c.ResetEvery == 0 {
			c.ResetEvery = -1
		}
		if c.Mode == chaos.ModeMirror {
			mirrorDefaults(fs, &c) // after the zero-means-none above: zero here means the mirror's default
		}
		c.Brokers = app.SplitBrokers(*brokers)
		c.NoFaults = *noFaults
		if *instanceLogs {
			c.InstanceLogs = os.Stderr
		}
		bin := *instanceBinary
		if bin == "" {
			var err error
			if bin, err = os.Executable(); err != nil {
				return fmt.Errorf("finding this binary to run the instances: %w", err)
			}
		} else {
			abs, err := filepath.Abs(bin)
			if err == nil {
				_, err = os.Stat(abs)
			}
			if err != nil {
				return app.Usagef("--instance-binary: %v", err)
			}
			bin = abs
		}
		c.Binary = bin
		c.Out = stdout
		rep, err := chaos.Run(ctx, c)
		if err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		fmt.Fprint(stdout, rep.String())
		if !rep.OK() {
			return app.ErrViolations
		}
		return nil
	}
}

// mirrorDefaults zeroes the flags whose defaults differ in the mirror mode
// and were not given, so that chaos.Config's mirror defaults apply.
func mirrorDefaults(fs *flag.FlagSet, c *chaos.Config) {
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range map[string]*int{"instances": &c.Instances, "max-instances": &c.MaxInstances} {
		if !set[name] {
			*v = 0
		}
	}
	for name, v := range map[string]*time.Duration{"idle-every": &c.IdleEvery, "idle-for": &c.IdleFor} {
		if !set[name] {
			*v = 0
		}
	}
}

// chaosSecurity checks the connection-security flags and sets them on c:
// they are for real clusters only (the embedded kfake clusters are
// plain), the target's for the mirror mode.
func chaosSecurity(c *chaos.Config, sec, targetSec *kafkaauth.Flags, brokers, targetBrokers string) error {
	for _, f := range []*kafkaauth.Flags{sec, targetSec} {
		if err := f.Validate(); err != nil {
			return err // a *kafkaauth.FlagError: app names the flag
		}
	}
	c.Security, c.TargetSecurity = sec.Config(), targetSec.Config()
	switch {
	case c.Security.Enabled() && brokers == "":
		return app.Usagef("--brokers: is required with --tls or --sasl-* (%s): the embedded kfake cluster is plain", c.Security.Describe())
	case c.TargetSecurity.Enabled() && targetBrokers == "":
		return app.Usagef("--target-brokers: is required with --target-tls or --target-sasl-* (%s), in --mode mirror", c.TargetSecurity.Describe())
	}
	return nil
}
