package app

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestPingWaitsForALateBroker starts the broker a moment after the check
// began, as when a deployment starts brokers and instances together: the
// check must keep asking until the timeout, not fail on the first refused
// connection.
func TestPingWaitsForALateBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close()) // free again: nothing answers there until the cluster starts
	started := make(chan *kfake.Cluster, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
		if err != nil {
			t.Error(err)
		}
		started <- c
	}()
	fs := newFlagSet("wc", "run", "TEST_")
	err = pingBrokers(context.Background(), fs, []string{"127.0.0.1:" + strconv.Itoa(port)}, 20*time.Second)
	if c := <-started; c != nil {
		defer c.Close()
	}
	require.NoError(t, err)
}

// TestPingGivesUpAtTheTimeout: with no broker at all the check fails after
// the timeout, naming where the timeout came from.
func TestPingGivesUpAtTheTimeout(t *testing.T) {
	fs := newFlagSet("wc", "run", "TEST_")
	begin := time.Now()
	err := pingBrokers(context.Background(), fs, []string{"127.0.0.1:1"}, 700*time.Millisecond)
	require.ErrorContains(t, err, "no broker reachable at 127.0.0.1:1 within 700ms (--connect-timeout)")
	require.GreaterOrEqual(t, time.Since(begin), 700*time.Millisecond, "it must keep asking until the timeout")
}
