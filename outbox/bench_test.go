package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/outbox"
)

// The relay's benchmarks, on kfake and every configured database:
//
//   - BenchmarkRelayThroughput: b.N rows waiting, the time the relay takes
//     to publish them and drain the table (rows/s).
//   - BenchmarkRelayLatency: one row at a time, from the writer's commit
//     to the record being visible to a read_committed consumer (ms).
//   - BenchmarkDBCeiling: the same database's raw ceiling without Kafka:
//     inserting rows in transactions of one batch (Writer.Write), then
//     deleting them in one transaction per batch; insert-rows/s and
//     delete-rows/s each, rows/s both. The relay's rows/s compares with
//     delete-rows/s: it adds one SELECT and a Kafka transaction per batch
//     to the delete.

const benchBatch = 500

func benchDBs(b *testing.B, f func(b *testing.B, db *dbtest.DB)) {
	for _, d := range dbtest.Configured() {
		b.Run(d.String(), func(b *testing.B) { f(b, dbtest.Open(b, d)) })
	}
}

// benchEnv is the benchmark's broker and database: kfake, or the cluster
// of KAFKA_BROKERS when set, on which the topic and the relay's name (and
// so its progress topic) are new for each benchmark: a relay reusing the
// name of one from another database would delete the ids its progress
// names.
func benchEnv(b *testing.B, db *dbtest.DB) *env {
	brokers := os.Getenv("KAFKA_BROKERS")
	if brokers == "" {
		return newEnv(b, db)
	}
	e := &env{t: b, db: db, brokers: strings.Split(brokers, ",")}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	e.name, e.topic = "bench-relay-"+suffix, "bench-events-"+suffix
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	require.NoError(b, err)
	b.Cleanup(cl.Close)
	e.cl = cl
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), 3, -1, nil, e.topic)
	require.NoError(b, errors.Join(err, resp.Err))
	_, err = db.ExecContext(context.Background(), outbox.Schema(db.Dialect, outbox.DefaultTable))
	require.NoError(b, err)
	e.w, err = outbox.NewWriter(db.Dialect, outbox.DefaultTable)
	require.NoError(b, err)
	return e
}

// fill writes n rows, in transactions of benchBatch rows.
func fill(b *testing.B, e *env, n int) {
	ctx := context.Background()
	value := make([]byte, 100)
	for n > 0 {
		tx, err := e.db.BeginTx(ctx, nil)
		require.NoError(b, err)
		msgs := make([]outbox.Message, min(n, benchBatch))
		for i := range msgs {
			msgs[i] = outbox.Message{Topic: e.topic, Key: []byte(strconv.Itoa(n % 64)), Value: value}
			n--
		}
		require.NoError(b, e.w.Write(ctx, tx, msgs...))
		require.NoError(b, tx.Commit())
	}
}

func BenchmarkRelayThroughput(b *testing.B) {
	benchDBs(b, func(b *testing.B, db *dbtest.DB) {
		e := benchEnv(b, db)
		fill(b, e, b.N)
		b.ResetTimer()
		run := e.start(outbox.BatchSize(benchBatch))
		for e.rowCount() != 0 {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		require.NoError(b, run.stop(b))
	})
}

func BenchmarkRelayLatency(b *testing.B) {
	benchDBs(b, func(b *testing.B, db *dbtest.DB) {
		e := benchEnv(b, db)
		run := e.start(outbox.BatchSize(benchBatch))
		cons, err := kgo.NewClient(kgo.SeedBrokers(e.addrs()...), kgo.ConsumeTopics(e.topic),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(10*time.Millisecond))
		require.NoError(b, err)
		defer cons.Close()
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			e.write(outbox.Message{Topic: e.topic, Key: []byte("k"), Value: []byte(fmt.Sprint(i))})
			committed := time.Now()
			for seen := false; !seen; {
				cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen = seen || string(r.Value) == fmt.Sprint(i) })
			}
			lat = append(lat, time.Since(committed))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		require.NoError(b, run.stop(b))
	})
}

func BenchmarkDBCeiling(b *testing.B) {
	benchDBs(b, func(b *testing.B, db *dbtest.DB) {
		e := benchEnv(b, db)
		ctx := context.Background()
		b.ResetTimer()
		start := time.Now()
		fill(b, e, b.N)
		inserted := time.Now()
		del := e.db.Dialect.Rebind("DELETE FROM outbox WHERE id IN (SELECT id FROM (SELECT id FROM outbox ORDER BY id LIMIT ?) AS b)")
		for e.rowCount() != 0 {
			tx, err := e.db.BeginTx(ctx, nil)
			require.NoError(b, err)
			_, err = tx.ExecContext(ctx, del, benchBatch)
			require.NoError(b, err)
			require.NoError(b, tx.Commit())
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/inserted.Sub(start).Seconds(), "insert-rows/s")
		b.ReportMetric(float64(b.N)/time.Since(inserted).Seconds(), "delete-rows/s")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
