package processor

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestResetStateRidesOutStaleMetadata: a broker that has not yet heard of
// the changelog's deletion answers metadata requests with the deleted
// topic. The reset must still create the changelog anew and land its
// offset records there; before, it took the stale answer for "the
// changelog exists", created nothing, and its offset records had no topic
// to go to, so the reset failed half done (changelogs gone) and a normal
// start then created empty ones and waited in its restore forever.
func TestResetStateRidesOutStaleMetadata(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	brokers := c.ListenAddrs()
	topo := counterTopology(t)
	dir := t.TempDir()
	produceInputs(t, brokers, 2, 10, nil)
	in := start(t, topo, brokers, dir, "a")
	in.waitRecords(t, 20)
	in.close(t)

	changelog := ChangelogTopic("app", "counts")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The metadata as it was before the reset: what a lagging broker says.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(changelog)
	req.Topics = append(req.Topics, rt)
	stale, err := req.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Len(t, stale.Topics, 1)
	require.Zero(t, stale.Topics[0].ErrorCode)
	oldID := stale.Topics[0].TopicID

	// An operator moves the group back to offset 5.
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "in", Partition: 0, At: 5})
	_, err = kadm.NewClient(cl).CommitOffsets(ctx, "app", os)
	require.NoError(t, err)

	// Once the changelog is deleted, the first metadata answer about it is
	// true (the reset sees it gone), the next few are stale.
	var deleted atomic.Bool
	var asked, lied atomic.Int32
	c.ControlKey(int16(kmsg.DeleteTopics), func(kmsg.Request) (kmsg.Response, error, bool) {
		deleted.Store(true)
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.Metadata), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.MetadataRequest)
		if !deleted.Load() || !slices.ContainsFunc(req.Topics, func(t kmsg.MetadataRequestTopic) bool {
			return t.Topic != nil && *t.Topic == changelog
		}) {
			return nil, nil, false
		}
		if asked.Add(1) == 1 || lied.Load() >= 4 {
			return nil, nil, false
		}
		lied.Add(1)
		resp := *stale
		resp.Version = req.Version
		return &resp, nil, true
	})

	in2 := start(t, topo, brokers, dir, "a", ResetState(true))
	in2.waitRecords(t, 15)
	in2.close(t)
	require.Equal(t, int32(4), lied.Load(), "the stale answers were not asked for")
	require.Equal(t, map[string]int64{"k0": 7, "k1": 8}, localCounts(t, dir, 1))

	cl.PurgeTopicsFromClient(changelog)
	details, err := kadm.NewClient(cl).ListTopics(ctx, changelog)
	require.NoError(t, err)
	require.NotEqual(t, oldID, [16]byte(details[changelog].ID), "the changelog was not created anew")

	// A normal start on a fresh state directory restores from the new
	// changelog, the offset record included, without waiting.
	produceInputs(t, brokers, 2, 1, nil)
	in3 := start(t, topo, brokers, t.TempDir(), "b", RestoreTimeout(20*time.Second))
	in3.waitRecords(t, 2)
	in3.close(t)
}

// TestHalfDoneResetSaysSo: changelogs deleted after the group committed
// (a reset stopped between its deletion and its offset records) hold no
// offset record for the committed offsets, so a normal start cannot tell
// its state and waits in its restore. Its error must say what it waits for
// and the way out, and a reset then finishes the job.
func TestHalfDoneResetSaysSo(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	brokers := c.ListenAddrs()
	topo := counterTopology(t)
	produceInputs(t, brokers, 2, 5, nil)
	in := start(t, topo, brokers, t.TempDir(), "a")
	in.waitRecords(t, 10)
	in.close(t)

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changelog := ChangelogTopic("app", "counts")
	resps, err := kadm.NewClient(cl).DeleteTopics(ctx, changelog)
	require.NoError(t, err)
	require.NoError(t, resps.Error())

	dir := t.TempDir()
	in2 := start(t, topo, brokers, dir, "b", RestoreTimeout(2*time.Second))
	select {
	case err := <-in2.err:
		require.ErrorIs(t, err, ErrRestoreIncomplete)
		require.ErrorContains(t, err, "the group committed in offset 10 but the changelog holds no offset record for in")
		require.ErrorContains(t, err, "run it again")
	case <-time.After(30 * time.Second):
		t.Fatal("the restore did not give up")
	}
	in3 := start(t, topo, brokers, dir, "b", ResetState(true))
	produceInputs(t, brokers, 2, 1, nil)
	in3.waitRecords(t, 2)
	in3.close(t)
	require.Equal(t, map[string]int64{"k0": 1, "k1": 1}, localCounts(t, dir, 1))
}
