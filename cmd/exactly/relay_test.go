package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/outbox"
	"github.com/exactly-stream/exactly/sqldb"
)

// `exactly relay schema` prints SQL that creates a working outbox table;
// `exactly relay` publishes its rows and drains it.
func TestRelayCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	require.NoError(t, err)
	defer kc.Close()
	dsn := "file:" + filepath.Join(t.TempDir(), "app.db")
	db, err := sqldb.Open(sqldb.SQLite, dsn)
	require.NoError(t, err)
	defer db.Close()

	schema, err := runCLI("relay", "schema", "--dialect", "sqlite", "--table", "events_outbox")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(schema, "CREATE TABLE IF NOT EXISTS events_outbox ("), schema)
	_, err = db.ExecContext(ctx, schema)
	require.NoError(t, err)
	w, err := outbox.NewWriter(sqldb.SQLite, "events_outbox")
	require.NoError(t, err)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, w.Write(ctx, tx, outbox.Message{Topic: "events", Key: []byte("k"), Value: []byte("hello")}))
	require.NoError(t, tx.Commit())

	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- dispatch(rctx, []string{"relay", "--db-dialect", "sqlite", "--db-dsn", dsn, "--brokers", strings.Join(kc.ListenAddrs(), ","),
			"--name", "app", "--table", "events_outbox", "--poll-interval", "20ms"}, &out)
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events_outbox").Scan(&n))
		return n == 0
	}, 30*time.Second, 20*time.Millisecond)
	stop()
	require.NoError(t, <-done)
	require.Equal(t, "relayed 1 rows in 1 batches, 0 transactions aborted\n", out.String())
	recs, err := exactlytest.ReadCommitted(ctx, cl, "events", exactlytest.ReadOptions{})
	require.NoError(t, err)
	got := exactlytest.Records(recs)
	require.Len(t, got, 1)
	require.Equal(t, "hello", string(got[0].Value))
}

// Bad relay flags fail fast with exit status 2 and a message naming the
// flag.
func TestRelayBadFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"relay", "--brokers", "x:1"}, "--db-dsn"},
		{[]string{"relay", "--db-dsn", "x", "--db-dialect", "oracle", "--brokers", "x:1"}, "--db-dialect"},
		{[]string{"relay", "--db-dsn", "x"}, "--brokers"},
		{[]string{"relay", "--db-dsn", "x", "--brokers", "x:1", "--batch-size", "0"}, "--batch-size"},
		{[]string{"relay", "--db-dsn", "x", "--brokers", "x:1", "--poll-interval", "0s"}, "--poll-interval"},
		{[]string{"relay", "--db-dsn", "x", "--brokers", "x:1", "--table", "a;b"}, "--table"},
		{[]string{"relay", "schema", "--dialect", "oracle"}, "--dialect"},
	} {
		_, err := runCLI(c.args...)
		require.Error(t, err, c.args)
		require.Equal(t, 2, exitCode(err), c.args)
		require.Contains(t, err.Error(), c.want, c.args)
	}
}
