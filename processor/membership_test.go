package processor

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRejoinsAfterALoneFencedInstance makes the group replace a static
// member once with no live twin: one JoinGroup with the member's instance
// ID from a client that then never heartbeats. The instance must rejoin
// and go on, its outputs exactly once.
//
// Regression: in the chaos soak on Kafka an instance restarted while the
// broker hosting the group coordinator was down stopped with "another
// process joined group ... FENCED_INSTANCE_ID" though no other process had
// its instance ID, most likely its own JoinGroup applied twice across the
// coordinator failover. The processor stopped at the first
// FENCED_INSTANCE_ID; it now stops only when fenced so twice within
// fencedInstanceWindow (a twin, TestFencedByTwinInstance in integration).
func TestRejoinsAfterALoneFencedInstance(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4)
	brokers := c.ListenAddrs()
	produceInputs(t, brokers, 8, 20, nil)
	a := start(t, counterTopology(t), brokers, t.TempDir(), "a")
	a.waitRecords(t, 160) // all of them: waitRecords wants the exact count

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	joinAs(t, cl, "app", "a")
	a.waitRestarts(t, 1)

	produceInputs(t, brokers, 8, 20, nil)
	a.waitRecords(t, 320)
	perKey := make(map[string]int)
	for k := range 8 {
		perKey["k"+strconv.Itoa(k)] = 40
	}
	checkCounts(t, readAll(t, brokers, "out"), 8, perKey)
	a.close(t)
}

// TestStopsWhenFencedInstanceTwice makes the group replace a static member
// twice within fencedInstanceWindow, as a live twin does: the first time
// the instance rejoins, the second it stops with ErrFenced, which Run
// returns fatal and naming FENCED_INSTANCE_ID.
func TestStopsWhenFencedInstanceTwice(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4)
	brokers := c.ListenAddrs()
	produceInputs(t, brokers, 8, 20, nil)
	a := start(t, counterTopology(t), brokers, t.TempDir(), "a")
	a.waitRecords(t, 160)

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	joinAs(t, cl, "app", "a")
	a.waitRestarts(t, 1)
	produceInputs(t, brokers, 8, 20, nil)
	a.waitRecords(t, 320) // the new session is a member

	joinAs(t, cl, "app", "a")
	select {
	case err := <-a.err:
		require.ErrorIs(t, err, ErrFenced)
		require.ErrorIs(t, err, kerr.FencedInstanceID)
		require.True(t, IsFatal(err), "fenced twice must be fatal: %v", err)
		require.Contains(t, err.Error(), "another process joined group app with instance ID a")
	case <-time.After(30 * time.Second):
		t.Fatal("an instance fenced twice within a minute is still running")
	}
}

// waitRestarts waits until the instance recreated its session n times,
// failing at once if it stopped.
func (in *instance) waitRestarts(t testing.TB, n int64) {
	t.Helper()
	in.waitStats(t, 30*time.Second, fmt.Sprintf("%d sessions recreated", n), func(st Stats) bool { return st.SessionRestart >= n })
}

// joinAs sends one JoinGroup to group with instanceID and no member ID,
// with the protocol and metadata of the member holding instanceID now, so
// that the group replaces that member; nothing follows it.
func joinAs(t testing.TB, cl *kgo.Client, group, instanceID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{group}
	dresp, err := describe.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Len(t, dresp.Groups, 1)
	g := dresp.Groups[0]
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group = group
	join.InstanceID = kmsg.StringPtr(instanceID)
	join.SessionTimeoutMillis = 6000
	join.RebalanceTimeoutMillis = 6000
	join.ProtocolType = g.ProtocolType
	for _, m := range g.Members {
		if m.InstanceID != nil && *m.InstanceID == instanceID {
			proto := kmsg.NewJoinGroupRequestProtocol()
			proto.Name, proto.Metadata = g.Protocol, m.ProtocolMetadata
			join.Protocols = append(join.Protocols, proto)
		}
	}
	require.Len(t, join.Protocols, 1, "a member of group %s with instance ID %s", group, instanceID)
	// The group may hold the answer for a rebalance, which the fenced
	// member's rejoin ends; the answer does not matter.
	jresp, err := join.RequestWith(ctx, cl)
	if err == nil {
		t.Logf("the one-off JoinGroup as %s: %v, member %s", instanceID, kerr.ErrorForCode(jresp.ErrorCode), jresp.MemberID)
	}
}
