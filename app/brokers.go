package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/kafkaauth"
)

// WaitForBroker waits at most timeout for one of cl's seed brokers to
// answer, asking again (backing off up to a second) while none does:
// brokers started at the same moment as the program (a deployment, a test
// cluster) answer a little later. It returns nil once one answered or ctx
// is cancelled, and the last failure when timeout passed first. A broker
// that refuses the client's credentials or certificate ends the wait at
// once with a *kafkaauth.AuthError naming the mechanism and the broker:
// waiting cannot mend it.
func WaitForBroker(ctx context.Context, cl *kgo.Client, timeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pause := 50 * time.Millisecond
	for {
		err := cl.Ping(pctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if aerr := kafkaauth.Check(cl, err, seeds(cl)); aerr != nil {
			return aerr
		}
		select {
		case <-pctx.Done():
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-time.After(pause):
			pause = min(2*pause, time.Second)
		}
	}
}

// pingBrokers waits at most timeout for one of brokers to answer (see
// WaitForBroker), naming where the timeout came from when none does.
func pingBrokers(ctx context.Context, fs *flagSet, brokers []string, timeout time.Duration, opts ...kgo.Opt) error {
	cl, err := newClient(fs, brokers, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := WaitForBroker(ctx, cl, timeout); err != nil {
		if kafkaauth.IsAuthFailure(err) {
			return err
		}
		return fmt.Errorf("no broker reachable at %s within %s (%s): %w",
			strings.Join(brokers, ","), timeout, fs.origin("connect-timeout"), err)
	}
	return nil
}

// seeds returns cl's seed brokers, comma-separated.
func seeds(cl *kgo.Client) string {
	s, _ := cl.OptValue(kgo.SeedBrokers).([]string)
	return strings.Join(s, ",")
}

// securityFlags declares the connection-security flags of package
// kafkaauth (--tls..., --sasl-...) on fs.
func securityFlags(fs *flagSet) *kafkaauth.Flags { return kafkaauth.RegisterFlags(fs.FlagSet, "") }

// securedClient returns a client of brokers secured as sec says.
func securedClient(fs *flagSet, brokers []string, sec *kafkaauth.Flags) (*kgo.Client, error) {
	opts, err := sec.Opts()
	if err != nil {
		return nil, err
	}
	return newClient(fs, brokers, opts...)
}

// checkAuth fails at once when the brokers refuse cl's credentials or
// certificate; it waits at most timeout, and only when cl is secured
// (sec), for a broker to answer first. Any other failure is left to the
// command, which reports unreachable brokers in its own way.
func checkAuth(ctx context.Context, cl *kgo.Client, sec *kafkaauth.Flags, timeout time.Duration) error {
	if !sec.Config().Enabled() {
		return nil
	}
	if err := WaitForBroker(ctx, cl, timeout); kafkaauth.IsAuthFailure(err) {
		return err
	}
	return nil
}

// newClient returns a client of brokers, which must not be empty.
func newClient(fs *flagSet, brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	if len(brokers) == 0 {
		return nil, Usagef("--brokers (or %s) is required", fs.envName("brokers"))
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUsage, fs.origin("brokers"), err)
	}
	return cl, nil
}
