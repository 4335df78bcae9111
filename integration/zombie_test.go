package integration

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/orders"
)

// TestZombie freezes an instance (SIGSTOP) with a transaction open, past
// its session timeout, so that the group gives its partitions to a second
// instance which processes them; then it thaws the first (SIGCONT). The
// zombie's in-flight transaction must commit nothing: KIP-447 fences its
// offsets commit by the group generation, or the transaction timeout has
// aborted it and bumped its producer epoch. E1-E5 hold.
//
// On kfake the freeze is exact: a control on the zombie's own requests
// stops it the moment the broker receives its first produce of a
// transaction ("mid-transaction": data written, offsets not) or its
// TxnOffsetCommit ("offsets pending": only EndTxn is missing). On another
// cluster the process is frozen while it processes a steady input, at a
// moment its transaction coordinator describes its transaction as open
// (freezeInTransaction).
func TestZombie(t *testing.T) {
	for _, tc := range zombieCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if os.Getenv("KAFKA_BROKERS") != "" {
				zombie(t, newEnv(t), nil, tc)
			} else {
				e, c := newKfakeEnv(t)
				zombie(t, e, c, tc)
			}
		})
	}
}

// zombieCase is one way TestZombie freezes its zombie.
type zombieCase struct {
	name string
	at   kmsg.Key // the zombie's request that freezes it
	// The zombie's transaction timeout: longer than the takeover, so
	// that only the group fences it, or shorter, so that the broker
	// aborts it first.
	txnTimeout string
	// Whether the successor processes everything before the zombie
	// thaws. It cannot when the zombie's offsets commit is pending:
	// fetching the committed offsets answers UNSTABLE_OFFSET_COMMIT
	// until the zombie's transaction ends (KIP-447).
	takeoverFirst bool
}

var zombieCases = []zombieCase{
	{"mid-transaction, fenced by the generation", kmsg.Produce, "30s", true},
	{"offsets pending, aborted by the transaction timeout", kmsg.TxnOffsetCommit, "3s", true},
	{"offsets pending, thawed before the transaction timeout", kmsg.TxnOffsetCommit, "30s", false},
	{"mid-transaction, aborted by the transaction timeout", kmsg.Produce, "3s", true},
}

// zombie is one case of TestZombie on e, frozen through c's control API
// when c is not nil (a kfake cluster), by freezeInTransaction otherwise.
func zombie(t *testing.T, e *env, c *kfake.Cluster, tc zombieCase) {
	e.produce(1000, 1400, 0)
	dir := filepath.Join(e.root, "z")
	z := e.spawn("z", dir, spawnOpts{args: []string{"--transaction-timeout", tc.txnTimeout}})
	e.start("order", "b", "b")
	group := e.group("order")
	e.waitCommitted(group, 600)

	frozen := make(chan struct{})
	if c != nil {
		freezeOn(c, tc.at, group+"-z", z.cmd.Process.Pid, frozen)
		e.produce(500, 1401, 0) // work for the zombie to start a transaction on
	} else {
		e.freezeInTransaction(z, group+"-z", 1401)
		close(frozen)
	}
	select {
	case <-frozen:
	case <-time.After(time.Minute):
		t.Fatal("the zombie was never frozen")
	}
	t.Cleanup(func() { _ = z.cmd.Process.Signal(syscall.SIGCONT) })

	// The group drops the zombie once its session times out and
	// gives its partitions to b.
	e.produce(300, 1402, 0)
	e.waitGone(group, group+"-z", time.Minute)
	if tc.takeoverFirst {
		e.waitCaughtUp(group, 2*time.Minute)
	}
	require.False(t, z.exited())
	aborted := len(z.logs("transaction aborted")) // before the freeze, e.g. when b joined
	require.NoError(t, z.cmd.Process.Signal(syscall.SIGCONT))

	// Thawed, the zombie learns it was fenced: its transaction
	// aborts (it goes on as a new member), or it stops fenced. With its
	// offsets pending, it may also commit: its TxnOffsetCommit was
	// accepted while it was still a member, and the successor could not
	// read the offsets until the transaction ended (KIP-447,
	// RequireStable), so committing loses and duplicates nothing; kgo
	// commits when its forced heartbeat succeeds, as after a quick
	// static rejoin. Whatever the outcome, the checks below must hold.
	deadline := time.Now().Add(time.Minute)
	committed := false
	for len(z.logs("transaction aborted")) == aborted && !z.exited() {
		if !tc.takeoverFirst {
			if lag, err := e.lag(group); err == nil && lag == 0 {
				committed = true // the pending offsets are stable and nothing aborted
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "the zombie neither aborted, stopped nor ended its pending transaction")
		time.Sleep(50 * time.Millisecond)
	}
	switch {
	case committed:
		t.Logf("zombie's pending transaction ended without an abort: the group caught up")
	case z.exited():
		require.NotZero(t, z.cmd.ProcessState.ExitCode(), "a fenced zombie stops with an error")
		require.Contains(t, z.out.String(), "FENCED")
		t.Logf("zombie stopped: %s: %s", z.cmd.ProcessState, lastLine(z.out.String()))
	default:
		t.Logf("zombie aborted: %v", z.logs("transaction aborted")[aborted]["cause"])
	}
	e.produce(300, 1403, 0)
	e.waitVerified(false, 2*time.Minute)
	if !z.exited() {
		z.stop(t)
	}
	e.finalCheck(false, dir)
}

// freezeInTransaction SIGSTOPs z while it has a transaction open. It feeds
// z a steady input, stops it the moment the coordinator describes z's
// transaction (txnID) as Ongoing, and keeps it stopped if a second later
// the transaction has still not committed: an EndTxn that z sent just
// before the stop would have committed it by then. Otherwise it thaws z
// and tries again, well within z's session timeout.
func (e *env) freezeInTransaction(z *child, txnID string, seed int64) {
	e.t.Helper()
	var stop atomic.Bool
	errc := make(chan error, 1)
	go func() {
		cl, err := e.client()
		if err != nil {
			errc <- err
			return
		}
		defer cl.Close()
		for i := int64(0); !stop.Load(); i++ {
			if _, err := orders.Produce(context.Background(), cl, orders.ProduceConfig{
				Count: 50, Customers: 50, Rate: 250, MalformedShare: 0.03, DuplicateShare: 0.03,
				Seed: seed*1000 + i, Topic: e.topics.Orders,
			}); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	defer func() {
		stop.Store(true)
		require.NoError(e.t, <-errc)
	}()
	deadline := time.Now().Add(time.Minute)
	for freezes := 0; ; {
		require.True(e.t, time.Now().Before(deadline), "%s never frozen with a transaction open (%d freezes)", txnID, freezes)
		if state, _ := e.txnState(txnID); state != "Ongoing" {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		require.NoError(e.t, z.cmd.Process.Signal(syscall.SIGSTOP))
		freezes++
		time.Sleep(time.Second)
		switch state, err := e.txnState(txnID); state {
		case "Ongoing", "PrepareAbort", "CompleteAbort", "PrepareEpochFence":
			e.t.Logf("%s frozen with its transaction %s (freeze %d)", txnID, state, freezes)
			return
		default:
			e.t.Logf("%s frozen after its transaction ended (%s, %v): thawed to try again", txnID, state, err)
			require.NoError(e.t, z.cmd.Process.Signal(syscall.SIGCONT))
		}
	}
}

// txnState returns the state in which txnID's coordinator describes its
// transaction.
func (e *env) txnState(txnID string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, err := e.admin.DescribeTransactions(ctx, txnID)
	if err == nil {
		err = ds[txnID].Err
	}
	return ds[txnID].State, err
}

// waitGone waits until no member of group has client id (processor
// instances use their transactional id).
func (e *env) waitGone(group, clientID string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		gs, err := e.admin.DescribeGroups(ctx, group)
		cancel()
		if err == nil && gs[group].Err == nil && !slices.ContainsFunc(gs[group].Members, func(m kadm.DescribedGroupMember) bool { return m.ClientID == clientID }) {
			return
		}
		require.True(e.t, time.Now().Before(deadline), "%s still a member of %s after %s (%v)", clientID, group, timeout, err)
		time.Sleep(100 * time.Millisecond)
	}
}

// freezeOn installs a kfake control that SIGSTOPs pid when the broker
// receives its first request of kind key from transactional id txnID, then
// lets the broker handle the request as usual.
func freezeOn(c *kfake.Cluster, key kmsg.Key, txnID string, pid int, frozen chan struct{}) {
	var done atomic.Bool
	c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
		var id string
		switch r := req.(type) {
		case *kmsg.ProduceRequest:
			if r.TransactionID != nil {
				id = *r.TransactionID
			}
		case *kmsg.TxnOffsetCommitRequest:
			id = r.TransactionalID
		}
		if id != txnID || done.Swap(true) {
			return nil, nil, false
		}
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		close(frozen)
		c.DropControl()
		return nil, nil, false
	})
}

// waitCaughtUp waits until group committed every orders partition up to
// its end offset.
func (e *env) waitCaughtUp(group string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		e.failed()
		lag, err := e.lag(group)
		if err == nil && lag == 0 {
			return
		}
		require.True(e.t, time.Now().Before(deadline), "group %s did not catch up within %s: lag %d (%v)", group, timeout, lag, err)
		time.Sleep(100 * time.Millisecond)
	}
}

// lag returns how many orders group has not committed yet.
func (e *env) lag(group string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return exactlytest.Lag(ctx, e.admin, group, e.topics.Orders)
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
