package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/examples/payments"
	"github.com/exactly-stream/exactly/sqldb"
)

// `exactly payments` pays every event of the order topic once into a
// SQLite file, dead-letters the malformed ones, serves its metrics, and
// stops cleanly on cancel.
func TestPaymentsCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "p-"+orders.TopicEvents))
	require.NoError(t, err)
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	want, bad, err := payments.Events{Topic: "p-" + orders.TopicEvents, Customers: 3, MalformedEvery: 8}.Produce(ctx, cl, 0, 40, false)
	require.NoError(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	metricsAddr := ln.Addr().String()
	require.NoError(t, ln.Close())
	dsn := "file:" + filepath.Join(t.TempDir(), "payments.db")
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- dispatch(rctx, []string{"payments", "--brokers", strings.Join(c.ListenAddrs(), ","), "--db-dialect", "sqlite", "--db-dsn", dsn,
			"--topic-prefix", "p-", "--instance-id", "t1", "--fetch-max-wait", "100ms", "--session-timeout", "6s", "--metrics-addr", metricsAddr}, &out)
	}()
	db, err := sqldb.Open(sqldb.SQLite, dsn)
	require.NoError(t, err)
	defer db.Close()
	var paid map[string]payments.Payment
	require.Eventually(t, func() bool {
		paid, err = payments.Read(ctx, db)
		return err == nil && len(paid) == len(want)
	}, 30*time.Second, 50*time.Millisecond)
	require.Empty(t, payments.Check(paid, want))
	var metrics string
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		metrics = string(b)
		return strings.Contains(metrics, `exactly_sink_records_applied_total{sink="exactly-payments-db"} 35`)
	}, 10*time.Second, 50*time.Millisecond)
	require.Contains(t, metrics, `exactly_sink_dead_lettered_total{sink="exactly-payments-db"} 5`)
	stop()
	require.NoError(t, <-done)
	require.Contains(t, out.String(), "applied 35 events")
	require.Equal(t, 5, bad)
}

// `exactly payments schema` prints every table for the dialect; bad
// flags of both commands are usage errors that name the flag.
func TestPaymentsSchemaAndFlags(t *testing.T) {
	ctx := context.Background()
	for _, d := range sqldb.Dialects {
		var b bytes.Buffer
		require.NoError(t, dispatch(ctx, []string{"payments", "schema", "--dialect", d.String()}, &b))
		require.Equal(t, payments.SchemaSQL(d), b.String())
		for _, table := range []string{"payments", "exactly_sink_offsets", "exactly_sink_dead_letters"} {
			require.Contains(t, b.String(), "CREATE TABLE IF NOT EXISTS "+table+" (")
		}
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"schema dialect":  {[]string{"payments", "schema", "--dialect", "oracle"}, "--dialect"},
		"schema missing":  {[]string{"payments", "schema"}, "--dialect"},
		"no brokers":      {[]string{"payments", "--db-dialect", "sqlite", "--db-dsn", "file:x"}, "--brokers"},
		"no dsn":          {[]string{"payments", "--brokers", "b:9092", "--db-dialect", "sqlite"}, "--db-dsn"},
		"bad dialect":     {[]string{"payments", "--brokers", "b:9092", "--db-dialect", "db2", "--db-dsn", "x"}, "--db-dialect"},
		"bad max records": {[]string{"payments", "--brokers", "b:9092", "--db-dialect", "sqlite", "--db-dsn", "x", "--max-records", "0"}, "--max-records"},
		"bad session":     {[]string{"payments", "--brokers", "b:9092", "--db-dialect", "sqlite", "--db-dsn", "x", "--session-timeout", "0s"}, "--session-timeout"},
		"bad idle":        {[]string{"payments", "--brokers", "b:9092", "--db-dialect", "sqlite", "--db-dsn", "x", "--db-idle-timeout", "-1s"}, "--db-idle-timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			err := dispatch(ctx, tc.args, io.Discard)
			require.Error(t, err)
			require.Equal(t, 2, exitCode(err), "%v", err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
