package integration

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/internal/cluster"
)

// realCluster returns the project's cluster.sh cluster behind KAFKA_BROKERS.
// These tests kill brokers, which needs that tooling's run directory: they
// skip when no broker is configured (the embedded kfake run) or when
// KAFKA_BROKERS names a cluster the tooling did not start (Redpanda, a
// shared cluster), where nothing may be killed.
func realCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	if os.Getenv("KAFKA_BROKERS") == "" {
		t.Skip("needs a real cluster: set KAFKA_BROKERS (make test-kafka starts one)")
	}
	c, err := cluster.FromEnv()
	if errors.Is(err, cluster.ErrNoCluster) {
		t.Skip("KAFKA_BROKERS is not a cluster started by integration/kafka/cluster.sh: no broker may be killed")
	}
	require.NoError(t, err)
	require.ElementsMatch(t, c.Brokers(), strings.Split(os.Getenv("KAFKA_BROKERS"), ","),
		"KAFKA_BROKERS and the cluster.sh run directory disagree")
	if len(c.Nodes()) < 3 {
		t.Skip("killing a broker needs three nodes (replication factor 3, min.insync.replicas 2)")
	}
	return c
}

// TestBrokerKilledMidRun kills one broker (SIGKILL) while three instances
// process a steady input, and restarts it 15 s later. Partition leaders
// move, transactions in flight abort or retry; E1-E5 hold and processing
// goes on past the broker's return.
func TestBrokerKilledMidRun(t *testing.T) {
	c := realCluster(t)
	e := newEnv(t)
	for _, n := range []string{"a", "b", "c"} {
		e.start("order", n, n)
	}
	produced := make(chan struct{})
	e.wg.Go(func() { defer close(produced); e.produce(8000, 10, 400) })
	e.waitCommitted(e.group("order"), 1000)

	victim := c.Nodes()[1]
	restartOnCleanup(t, c, victim)
	require.NoError(t, c.Kill(victim))
	t.Logf("killed node %d", victim)
	e.waitCommitted(e.group("order"), 2500) // no stall while it is down
	time.Sleep(5 * time.Second)             // let it stay down a while: leaders and coordinators move
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, c.Start(ctx, victim))
	t.Logf("restarted node %d", victim)
	<-produced
	e.waitVerified(false, 3*time.Minute)
	e.finalCheck(false)
}

// TestTxnCoordinatorKilledMidTransaction kills the broker that coordinates
// an instance's transactions while it processes (a transaction is open
// nearly all the time at this rate), then restarts it. The coordinator
// moves; the open transaction is aborted or completed by the new
// coordinator from the transaction log, never half-applied.
func TestTxnCoordinatorKilledMidTransaction(t *testing.T) {
	c := realCluster(t)
	e := newEnv(t)
	in := e.start("order", "a", "a")
	produced := make(chan struct{})
	e.wg.Go(func() { defer close(produced); e.produce(6000, 11, 400) })
	e.waitCommitted(e.group("order"), 800)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	coords := e.admin.FindTxnCoordinators(ctx, in.p.TransactionalID())
	coord, ok := coords[in.p.TransactionalID()]
	require.True(t, ok)
	require.NoError(t, coord.Err)
	node := int(coord.NodeID)
	before := in.p.Stats().Committed
	restartOnCleanup(t, c, node)
	require.NoError(t, c.Kill(node))
	t.Logf("killed node %d, coordinator of %s", node, in.p.TransactionalID())
	deadline := time.Now().Add(2 * time.Minute)
	for in.p.Stats().Committed < before+5 {
		e.failed()
		require.True(t, time.Now().Before(deadline), "no transaction committed after the coordinator died")
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, c.Start(ctx, node))
	t.Logf("restarted node %d", node)
	<-produced
	e.waitVerified(false, 3*time.Minute)
	e.finalCheck(false)
}

// restartOnCleanup makes sure a killed node runs again after the test, even
// a failed one, so that the next test has the whole cluster.
func restartOnCleanup(t *testing.T, c *cluster.Cluster, node int) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := c.Start(ctx, node); err != nil {
			t.Errorf("restarting node %d: %v", node, err)
		}
	})
}
