package dbsink

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/dbtest"
)

// benchRecords is how many records one benchmark iteration applies.
const benchRecords = 20000

const benchTable = `CREATE TABLE bench (sink_name VARCHAR(100) NOT NULL, partition_id INT NOT NULL, record_offset BIGINT NOT NULL,
  value VARCHAR(100) NOT NULL, PRIMARY KEY (sink_name, partition_id, record_offset))`

// BenchmarkSink measures the sink's throughput (records/s applied, one
// INSERT per record, MaxRecords 1000) on kfake and each configured
// database, from the start of Run to the last commit, group join
// included. BenchmarkInsertCeiling is the same database's raw ceiling.
func BenchmarkSink(b *testing.B) {
	for _, d := range dbtest.Configured() {
		b.Run(d.String(), func(b *testing.B) {
			db := dbtest.Open(b, d)
			_, err := db.Exec(benchTable)
			require.NoError(b, err)
			brokers, topic, suffix := benchCluster(b)
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
			require.NoError(b, err)
			defer cl.Close()
			ctx := context.Background()
			for i := range benchRecords {
				cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: fmt.Appendf(nil, "value-%d", i)}, nil)
			}
			require.NoError(b, cl.Flush(ctx))
			insert := d.Rebind("INSERT INTO bench VALUES (?, ?, ?, ?)")
			var elapsed time.Duration
			n := 0
			for b.Loop() {
				n++
				name := fmt.Sprintf("bench-%s%d", suffix, n)
				h := HandlerFunc(func(ctx context.Context, tx *sql.Tx, r *kgo.Record) error {
					_, err := tx.ExecContext(ctx, insert, name, r.Partition, r.Offset, string(r.Value))
					return err
				})
				s, err := New(name, db.DB, d, h, Brokers(brokers...), Topics(topic), MaxRecords(1000), FetchMaxWait(50*time.Millisecond))
				require.NoError(b, err)
				began := time.Now()
				var wg sync.WaitGroup
				wg.Go(func() { _ = s.Run(ctx) })
				for s.Stats().RecordsApplied < benchRecords {
					time.Sleep(time.Millisecond)
				}
				elapsed += time.Since(began)
				s.Close()
				wg.Wait()
			}
			b.ReportMetric(float64(n*benchRecords)/elapsed.Seconds(), "records/s")
		})
	}
}

// benchCluster returns the benchmark's brokers and a topic of partitions
// partitions on them: a kfake cluster, or the cluster of KAFKA_BROKERS
// when set, on which the topic (and the sinks' names, by suffix) are new
// for each benchmark.
func benchCluster(b *testing.B) (brokers []string, topic, suffix string) {
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		suffix = strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
		topic = "bench-sink-" + suffix
		brokers = strings.Split(env, ",")
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		require.NoError(b, err)
		defer cl.Close()
		resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, -1, nil, topic)
		require.NoError(b, errors.Join(err, resp.Err))
		return brokers, topic, suffix
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "bench"))
	require.NoError(b, err)
	b.Cleanup(c.Close)
	return c.ListenAddrs(), "bench", ""
}

// BenchmarkInsertCeiling is the database's raw ceiling for the sink's
// work: the same INSERTs in transactions of 1000 rows, keys in order as
// the sink's (partition by partition), without Kafka, offsets or fencing.
func BenchmarkInsertCeiling(b *testing.B) {
	for _, d := range dbtest.Configured() {
		b.Run(d.String(), func(b *testing.B) {
			db := dbtest.Open(b, d)
			_, err := db.Exec(benchTable)
			require.NoError(b, err)
			insert := d.Rebind("INSERT INTO bench VALUES (?, ?, ?, ?)")
			ctx := context.Background()
			n := 0
			began := time.Now()
			for b.Loop() {
				n++
				require.NoError(b, insertRows(ctx, db.DB, insert, fmt.Sprintf("ceiling-%d", n)))
			}
			b.ReportMetric(float64(n*benchRecords)/time.Since(began).Seconds(), "rows/s")
		})
	}
}

func insertRows(ctx context.Context, db *sql.DB, insert, name string) error {
	for from := 0; from < benchRecords; from += 1000 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for i := from; i < from+1000; i++ {
			if _, err := tx.ExecContext(ctx, insert, name, i*partitions/benchRecords, i, fmt.Sprintf("value-%d", i)); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}
