package app

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/wordcount"
)

// lockedBuffer is a bytes.Buffer for one writer and concurrent readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runUntil runs args in the background until cond holds on its logs, then
// cancels it and returns Run's error and the logs.
func runUntil(t *testing.T, c Config, args []string, cond func(logs string) bool) (string, error) {
	t.Helper()
	var logs lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { done <- c.Run(ctx, args, &bytes.Buffer{}, &logs) })
	deadline := time.Now().Add(time.Minute)
	for !cond(logs.String()) && time.Now().Before(deadline) {
		select {
		case err := <-done:
			cancel()
			return logs.String(), err
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	wg.Wait()
	err := <-done
	return logs.String(), err
}

// TestRunThenReset: run counts a line; reset on the same state directory
// deletes the changelogs, wipes the local state, rebuilds from the
// committed offsets and goes on running.
func TestRunThenReset(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "lines"))
	require.NoError(t, err)
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(wordcount.TopicCounts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: "lines", Key: []byte("d"), Value: []byte("a b a")}).FirstErr())

	c := testConfig()
	dir := filepath.Join(t.TempDir(), "state")
	args := []string{"--brokers", strings.Join(cluster.ListenAddrs(), ","), "--state-dir", dir, "--instance-id", "i",
		"--commit-interval", "20ms", "--session-timeout", "6s", "--log-level", "info"}
	logs, err := runUntil(t, c, append([]string{"run"}, args...), func(string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return cl.PollFetches(ctx).NumRecords() > 0
	})
	require.NoError(t, err, logs)
	require.DirExists(t, dir)

	logs, err = runUntil(t, c, append([]string{"reset"}, args...), func(logs string) bool {
		return strings.Contains(logs, "msg=starting") && strings.Contains(logs, "resetting state")
	})
	require.NoError(t, err, logs)
	require.Contains(t, logs, "reset_state=true")
	require.Contains(t, logs, "resetting state: deleting changelogs and local state")
}
