package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/kafkaauth"
)

var produceCommand = app.Command{
	Name:    "produce",
	Summary: "write orders (some malformed, some re-sent) to the orders topic",
	Description: "Write generated orders to the orders topic: --count records for --customers customers, a share " +
		"of them malformed and a share re-sent, as fast as possible or at --rate. The seed makes the input " +
		"reproducible and is part of every order id. It fails within --connect-timeout when no broker answers.",
	Setup: produceSetup,
}

func produceFlags(fs *flag.FlagSet, c *orders.ProduceConfig) {
	fs.IntVar(&c.Count, "count", 10000, "records to write, malformed and duplicates included")
	fs.IntVar(&c.Customers, "customers", 100, "distinct customers")
	fs.IntVar(&c.Rate, "rate", 0, "records per second (0: as fast as possible)")
	fs.Float64Var(&c.MalformedShare, "malformed", 0.02, "share of malformed records, 0..1")
	fs.Float64Var(&c.DuplicateShare, "duplicates", 0.02, "share of re-sent (duplicated) orders, 0..1")
	fs.Int64Var(&c.Seed, "seed", time.Now().UnixNano()%1_000_000, "generator seed; also part of every order id (default: a random seed)")
}

func produceSetup(fs *flag.FlagSet) app.Runner {
	brokers := fs.String("brokers", "", "comma-separated seed brokers (required)")
	var c orders.ProduceConfig
	produceFlags(fs, &c)
	prefix := fs.String("topic-prefix", "", "prefix of the orders topic name")
	timeout := connectTimeoutFlag(fs)
	sec := kafkaauth.RegisterFlags(fs, "")
	return func(ctx context.Context, stdout io.Writer) error {
		c.Topic = orders.TopicsWithPrefix(*prefix).Orders
		if err := c.Validate(); err != nil {
			return fmt.Errorf("%w: %w", app.ErrUsage, err)
		}
		// A record that cannot be delivered fails the command instead of
		// being retried for ever: the brokers may go away after the ping.
		secOpts, err := sec.Opts()
		if err != nil {
			return err
		}
		cl, err := connect(ctx, *brokers, *timeout, append(secOpts, kgo.RecordDeliveryTimeout(max(*timeout, time.Minute)))...)
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
}

func connectTimeoutFlag(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("connect-timeout", 30*time.Second, "how long to wait for a broker to answer before giving up")
}

// client returns a client of the comma-separated brokers.
func client(brokers string, opts ...kgo.Opt) (*kgo.Client, error) {
	bs := app.SplitBrokers(brokers)
	if len(bs) == 0 {
		return nil, app.Usagef("--brokers (or EXACTLY_BROKERS) is required")
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bs...)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: --brokers: %w", app.ErrUsage, err)
	}
	return cl, nil
}

// connect returns a client of brokers once one of them answered, waiting
// at most timeout; a broker that refuses the client's credentials or
// certificate fails it at once (a *kafkaauth.AuthError).
func connect(ctx context.Context, brokers string, timeout time.Duration, opts ...kgo.Opt) (*kgo.Client, error) {
	if timeout <= 0 {
		return nil, app.Usagef("--connect-timeout: want a positive duration, got %s", timeout)
	}
	cl, err := client(brokers, opts...)
	if err != nil {
		return nil, err
	}
	if err := app.WaitForBroker(ctx, cl, timeout); err != nil {
		cl.Close()
		if kafkaauth.IsAuthFailure(err) {
			return nil, err
		}
		return nil, fmt.Errorf("no broker reachable at %s within %s (--connect-timeout): %w",
			strings.Join(app.SplitBrokers(brokers), ","), timeout, err)
	}
	return cl, nil
}

var verifyCommand = app.Command{
	Name:    "verify",
	Summary: "read every topic with read_committed and check exactly-once (E1-E5)",
	Description: "Read the orders, events, dead-letter and payments topics with read_committed and check the " +
		"pipeline's exactly-once properties E1-E5 against a fold of the input. It exits 3 when it finds violations.",
	Setup: verifySetup,
}

func verifySetup(fs *flag.FlagSet) app.Runner {
	brokers := fs.String("brokers", "", "comma-separated seed brokers (required)")
	payments := fs.Bool("payments", true, "also check the payment stage's output")
	wait := fs.Duration("stable-wait", 10*time.Second, "how long to wait for open transactions to end before reporting E5")
	prefix := fs.String("topic-prefix", "", "prefix of every topic name")
	timeout := connectTimeoutFlag(fs)
	sec := kafkaauth.RegisterFlags(fs, "")
	return func(ctx context.Context, stdout io.Writer) error {
		secOpts, err := sec.Opts()
		if err != nil {
			return err
		}
		cl, err := connect(ctx, *brokers, *timeout, secOpts...)
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
			return app.ErrViolations
		}
		return nil
	}
}
