package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/internal/crashpoint"
	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/outbox"
	"github.com/exactly-stream/exactly/sqldb"
)

// The outbox relay's killed-process tests: `exactly relay` runs as child
// processes between a database (every dialect dbtest configures) and
// Kafka (KAFKA_BROKERS when set, an in-process kfake cluster otherwise),
// is killed at each of its crash points or paused with SIGSTOP while a
// successor takes over, and after every scenario each outbox row must be
// published exactly once, rows of one key in commit order, and the table
// drained.

// relayEnv is one relay test's cluster, topic, database and processes.
type relayEnv struct {
	t       *testing.T
	brokers []string
	db      *dbtest.DB
	w       *outbox.Writer
	name    string
	topic   string
	cl      *kgo.Client
	seq     int // values written so far
	wg      sync.WaitGroup
}

func newRelayEnv(t *testing.T, db *dbtest.DB) *relayEnv {
	re := &relayEnv{t: t, db: db}
	if bs := os.Getenv("KAFKA_BROKERS"); bs != "" {
		re.brokers = strings.Split(bs, ",")
	} else {
		kc, err := kfake.NewCluster(kfake.NumBrokers(1))
		require.NoError(t, err)
		t.Cleanup(kc.Close)
		re.brokers = kc.ListenAddrs()
	}
	// Unique names: a real cluster keeps every test's topics and
	// transactional IDs.
	prefix := fmt.Sprintf("rt-%s-%d-", regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-"), rand.IntN(1e6))
	re.name, re.topic = prefix+"relay", prefix+"events"
	cl, err := kgo.NewClient(kgo.SeedBrokers(re.brokers...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	re.cl = cl
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, 3, -1, nil, re.topic)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	_, err = db.ExecContext(ctx, outbox.Schema(db.Dialect, outbox.DefaultTable))
	require.NoError(t, err)
	re.w, err = outbox.NewWriter(db.Dialect, outbox.DefaultTable)
	require.NoError(t, err)
	t.Cleanup(re.wg.Wait)
	return re
}

// write commits n rows, one transaction of up to 7 rows at a time, keys
// k0..k4 in turn; values count up so that each key's values rise in
// commit order.
func (re *relayEnv) write(n int) {
	re.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for n > 0 {
		tx, err := re.db.BeginTx(ctx, nil)
		require.NoError(re.t, err)
		for range min(n, 7) {
			m := outbox.Message{Topic: re.topic, Key: fmt.Appendf(nil, "k%d", re.seq%5), Value: fmt.Appendf(nil, "%06d", re.seq)}
			require.NoError(re.t, re.w.Write(ctx, tx, m))
			re.seq++
			n--
		}
		require.NoError(re.t, tx.Commit())
	}
}

// spawn starts `exactly relay` with the test settings (batches of 5 rows,
// a short poll interval and transaction timeout); o.args come last.
func (re *relayEnv) spawn(id string, o spawnOpts) *child {
	re.t.Helper()
	args := []string{"relay", "--db-dialect", re.db.Dialect.String(), "--db-dsn", re.db.DSN,
		"--brokers", strings.Join(re.brokers, ","), "--name", re.name,
		"--batch-size", "5", "--poll-interval", "50ms", "--transaction-timeout", "5s"}
	return startChild(re.t, &re.wg, "relay "+id, id, orBinary(o.bin), append(args, o.args...), append(os.Environ(), o.env...))
}

func (re *relayEnv) rows() int {
	re.t.Helper()
	var n int
	require.NoError(re.t, re.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM outbox").Scan(&n))
	return n
}

// published returns the committed records of the topic.
func (re *relayEnv) published() []*kgo.Record {
	re.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs, err := exactlytest.ReadCommitted(ctx, re.cl, re.topic, exactlytest.ReadOptions{})
	require.NoError(re.t, err)
	return exactlytest.Records(recs)
}

// waitPublished waits until at least n records are visible.
func (re *relayEnv) waitPublished(n int) {
	re.t.Helper()
	require.Eventually(re.t, func() bool { return len(re.published()) >= n }, time.Minute, 50*time.Millisecond)
}

// check requires every value written to be published exactly once,
// nothing else, rows of one key in commit order, outbox ids unique.
func (re *relayEnv) check() {
	re.t.Helper()
	recs := re.published()
	count := make(map[string]int)
	ids := make(map[string]bool)
	last := make(map[string]string)
	for _, r := range recs {
		v, k := string(r.Value), string(r.Key)
		count[v]++
		require.NotEqual(re.t, last[k], v, "value %s published twice", v)
		require.Less(re.t, last[k], v, "key %s published out of order", k)
		last[k] = v
		var id string
		for _, h := range r.Headers {
			if h.Key == outbox.HeaderID {
				id = string(h.Value)
			}
		}
		_, err := strconv.ParseInt(id, 10, 64)
		require.NoError(re.t, err, "record %s: %s header", v, outbox.HeaderID)
		require.False(re.t, ids[id], "outbox id %s published twice", id)
		ids[id] = true
	}
	for i := range re.seq {
		v := fmt.Sprintf("%06d", i)
		require.Equal(re.t, 1, count[v], "value %s published %d times", v, count[v])
	}
	require.Len(re.t, recs, re.seq, "records that no row asked for")
	require.Zero(re.t, re.rows(), "the table is not drained")
}

// TestRelayCrashPoints kills `exactly relay` at each crash point of its
// second batch (a real SIGKILL: no deferred call, no abort), writes more
// rows, restarts it, and requires every row published exactly once and
// the table drained: a batch killed before its commit is published by the
// successor, one killed after its commit (before or inside its delete) is
// deleted by the successor and not published again.
func TestRelayCrashPoints(t *testing.T) {
	for _, point := range crashpoint.Relay {
		t.Run(point, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
				re := newRelayEnv(t, db)
				re.write(23)
				crashed := re.spawn("crashed", spawnOpts{bin: crashpointBinary(t), env: crashAt(point, 2)})
				crashed.waitCrash(t, point, time.Minute)
				re.write(12)
				next := re.spawn("next", spawnOpts{})
				re.waitPublished(re.seq)
				require.Eventually(t, func() bool { return re.rows() == 0 }, 30*time.Second, 20*time.Millisecond)
				next.stop(t)
				re.check()
			})
		})
	}
}

// pause SIGSTOPs c, retrying until c is paused outside its delete
// transaction. A relay paused inside it holds that batch's row locks (on
// SQLite the database's one write lock), so its successor's recovery
// delete (and, on SQLite, every writer) waits until it resumes; the README
// says so. The test is about fencing, not that wait.
func (re *relayEnv) pause(c *child) {
	re.t.Helper()
	for range 200 {
		c.freeze(re.t)
		if re.unlocked() {
			return
		}
		require.NoError(re.t, c.cmd.Process.Signal(syscall.SIGCONT))
		time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
	}
	re.t.Fatal("the relay was always inside its delete transaction")
}

// unlocked reports whether no transaction holds a lock on the outbox.
func (re *relayEnv) unlocked() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := re.db.Conn(ctx)
	require.NoError(re.t, err)
	defer conn.Close()
	if re.db.Dialect == sqldb.SQLite {
		_, err = conn.ExecContext(ctx, "PRAGMA busy_timeout = 100")
		require.NoError(re.t, err)
		defer conn.ExecContext(ctx, "PRAGMA busy_timeout = 10000") //nolint:errcheck // the pool's setting back
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return false
		}
		_, err = conn.ExecContext(ctx, "ROLLBACK")
		require.NoError(re.t, err)
		return true
	}
	tx, err := conn.BeginTx(ctx, nil)
	require.NoError(re.t, err)
	defer tx.Rollback() //nolint:errcheck // only a probe
	rows, err := tx.QueryContext(ctx, "SELECT id FROM outbox FOR UPDATE NOWAIT")
	if err != nil {
		return false
	}
	for rows.Next() {
	}
	err = rows.Err()
	rows.Close()
	return err == nil
}

// TestRelayZombie pauses a relay (SIGSTOP) in the middle of its work,
// starts a successor with the same name, which fences it and drains the
// table, stops the successor, writes more rows and resumes the paused
// relay (SIGCONT): it must publish nothing more and exit with an error
// saying it was fenced; the rows it found stay for the next relay.
func TestRelayZombie(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		re := newRelayEnv(t, db)
		re.write(300)
		zombie := re.spawn("zombie", spawnOpts{args: []string{"--batch-size", "2"}})
		re.waitPublished(10)
		re.pause(zombie)
		successor := re.spawn("successor", spawnOpts{})
		re.write(10)
		re.waitPublished(re.seq)
		require.Eventually(t, func() bool { return re.rows() == 0 }, 30*time.Second, 20*time.Millisecond)
		successor.stop(t)
		re.write(10)
		require.NoError(t, zombie.cmd.Process.Signal(syscall.SIGCONT))
		ps := zombie.wait(t, time.Minute)
		require.Equal(t, 1, ps.ExitCode(), "the zombie: %s", ps)
		require.Contains(t, zombie.out.String(), "fenced")
		require.Equal(t, 10, re.rows(), "the zombie deleted rows it did not publish")
		require.Len(t, re.published(), re.seq-10, "the zombie published after its successor")
		last := re.spawn("last", spawnOpts{})
		re.waitPublished(re.seq)
		require.Eventually(t, func() bool { return re.rows() == 0 }, 30*time.Second, 20*time.Millisecond)
		last.stop(t)
		re.check()
	})
}
