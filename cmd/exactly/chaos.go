package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/exactly-stream/exactly/cmd/exactly/chaos"
)

// chaosCmd is `exactly chaos`: a randomized soak of the order service (see
// package chaos). It runs this same binary as the instances and exits 3
// when the checks find a violation.
func chaosCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	var c chaos.Config
	fs.DurationVar(&c.Duration, "duration", time.Minute, "how long failures are injected")
	fs.Int64Var(&c.Seed, "seed", 0, "seed of every random choice (0: from the clock; the seed is printed)")
	fs.IntVar(&c.Rate, "rate", 300, "orders produced per second")
	fs.IntVar(&c.Customers, "customers", 100, "distinct customers")
	fs.IntVar(&c.Instances, "instances", 3, "instances at start")
	fs.IntVar(&c.MinInstances, "min-instances", 1, "fewest instances when scaling down")
	fs.IntVar(&c.MaxInstances, "max-instances", 5, "most instances when scaling up")
	partitions := fs.Int("partitions", 6, "partitions of the orders and events topics, when created")
	fs.DurationVar(&c.EventInterval, "event-interval", 2*time.Second, "mean time between two failures")
	brokers := fs.String("brokers", "", "a real cluster's seed brokers (default: an embedded kfake cluster)")
	fs.StringVar(&c.KafkaDir, "kafka-dir", "", "run directory of an integration/kafka/cluster.sh cluster behind --brokers: kill and restart its brokers")
	noFaults := fs.Bool("no-faults", false, "inject no kfake broker faults")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", "", "prefix of the topics and group (default: none on kfake, chaos-<seed>-<time>- on a real cluster)")
	fs.StringVar(&c.StateDir, "state-dir", "", "where the instances' state goes (default: a temporary directory, removed)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 3*time.Minute, "how long the pipeline may take to catch up once the failures stop")
	instanceLogs := fs.Bool("instance-logs", false, "copy the instances' logs to stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *partitions < 1 || *partitions > 1000 {
		return fmt.Errorf("%w: --partitions: want 1..1000, got %d", errUsage, *partitions)
	}
	c.Partitions = int32(*partitions)
	c.Brokers = splitBrokers(*brokers)
	c.NoFaults = *noFaults
	if *instanceLogs {
		c.InstanceLogs = os.Stderr
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary to run the instances: %w", err)
	}
	c.Binary = bin
	c.Out = stdout
	rep, err := chaos.Run(ctx, c)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	fmt.Fprint(stdout, rep.String())
	if !rep.OK() {
		return errViolations
	}
	return nil
}
