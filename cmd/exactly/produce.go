package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
)

func produceFlags(fs *flag.FlagSet, c *orders.ProduceConfig) {
	fs.IntVar(&c.Count, "count", 10000, "records to write, malformed and duplicates included")
	fs.IntVar(&c.Customers, "customers", 100, "distinct customers")
	fs.IntVar(&c.Rate, "rate", 0, "records per second (0: as fast as possible)")
	fs.Float64Var(&c.MalformedShare, "malformed", 0.02, "share of malformed records, 0..1")
	fs.Float64Var(&c.DuplicateShare, "duplicates", 0.02, "share of re-sent (duplicated) orders, 0..1")
	fs.Int64Var(&c.Seed, "seed", time.Now().UnixNano()%1_000_000, "generator seed; also part of every order id")
}

func produceCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "comma-separated seed brokers (required)")
	var c orders.ProduceConfig
	produceFlags(fs, &c)
	prefix := fs.String("topic-prefix", "", "prefix of the orders topic name")
	if err := parse(fs, args); err != nil {
		return err
	}
	c.Topic = orders.TopicsWithPrefix(*prefix).Orders
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	cl, err := client(*brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	begin := time.Now()
	st, err := orders.Produce(ctx, cl, c)
	if err != nil {
		return fmt.Errorf("producing orders: %w", err)
	}
	d := time.Since(begin)
	fmt.Fprintf(stdout, "produced %d records (%d valid, %d malformed, %d duplicates) in %s, %.0f records/s, seed %d\n",
		st.Produced, st.Valid, st.Malformed, st.Duplicates, d.Round(time.Millisecond), float64(st.Produced)/d.Seconds(), c.Seed)
	return nil
}

func client(brokers string, opts ...kgo.Opt) (*kgo.Client, error) {
	bs := splitBrokers(brokers)
	if len(bs) == 0 {
		return nil, fmt.Errorf("%w: --brokers (or EXACTLY_BROKERS) is required", errUsage)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bs...)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: --brokers: %w", errUsage, err)
	}
	return cl, nil
}

func verifyCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "comma-separated seed brokers (required)")
	payments := fs.Bool("payments", true, "also check the payment stage's output")
	wait := fs.Duration("stable-wait", 10*time.Second, "how long to wait for open transactions to end before reporting E5")
	prefix := fs.String("topic-prefix", "", "prefix of every topic name")
	if err := parse(fs, args); err != nil {
		return err
	}
	cl, err := client(*brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	opts := orders.TopicsWithPrefix(*prefix).VerifyOptions(*payments)
	opts.StableWait = *wait
	rep, err := orders.Verify(ctx, cl, opts)
	if err != nil {
		return fmt.Errorf("verifying: %w", err)
	}
	fmt.Fprintln(stdout, rep.String())
	if !rep.OK() {
		return errViolations
	}
	return nil
}
