package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// WaitForBroker waits at most timeout for one of cl's seed brokers to
// answer, asking again (backing off up to a second) while none does:
// brokers started at the same moment as the program (a deployment, a test
// cluster) answer a little later. It returns nil once one answered or ctx
// is cancelled, and the last failure when timeout passed first.
func WaitForBroker(ctx context.Context, cl *kgo.Client, timeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pause := 50 * time.Millisecond
	for {
		err := cl.Ping(pctx)
		if err == nil || ctx.Err() != nil {
			return nil
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
func pingBrokers(ctx context.Context, fs *flagSet, brokers []string, timeout time.Duration) error {
	cl, err := newClient(fs, brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := WaitForBroker(ctx, cl, timeout); err != nil {
		return fmt.Errorf("no broker reachable at %s within %s (%s): %w",
			strings.Join(brokers, ","), timeout, fs.origin("connect-timeout"), err)
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
