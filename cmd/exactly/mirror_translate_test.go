package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// translateCmd runs `exactly mirror translate` through the kit (flags, the
// environment, exit statuses).
func translateCmd(ctx context.Context, args []string, stdout io.Writer) error {
	return config().Run(ctx, append([]string{"mirror", "translate"}, args...), stdout, io.Discard)
}

func TestMirrorTranslateUsage(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no source":           {[]string{"--target-brokers", "b:1", "--group", "g"}, "--source-brokers"},
		"no target":           {[]string{"--source-brokers", "a:1", "--group", "g"}, "--target-brokers"},
		"no group":            {[]string{"--source-brokers", "a:1", "--target-brokers", "b:1"}, "--group"},
		"empty group list":    {[]string{"--source-brokers", "a:1", "--target-brokers", "b:1", "--group", " , "}, "--group"},
		"force alone":         {[]string{"--source-brokers", "a:1", "--target-brokers", "b:1", "--group", "g", "--force"}, "--force"},
		"bad read timeout":    {[]string{"--source-brokers", "a:1", "--target-brokers", "b:1", "--group", "g", "--read-timeout", "0s"}, "--read-timeout"},
		"bad connect timeout": {[]string{"--source-brokers", "a:1", "--target-brokers", "b:1", "--group", "g", "--connect-timeout", "0s"}, "--connect-timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			err := translateCmd(context.Background(), tc.args, &bytes.Buffer{})
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, 2, exitCode(err))
		})
	}
}

func TestListFlag(t *testing.T) {
	var l listFlag
	require.NoError(t, l.Set("a, b,,"))
	require.NoError(t, l.Set("c"))
	require.Equal(t, listFlag{"a", "b", "c"}, l)
	require.Equal(t, "a,b,c", l.String())
}

// `translate` prints a group's translated offsets; with --commit it
// commits them into the group on the target (exit 0), and when a partition
// is beyond the mirror it commits nothing and exits 3.
func TestMirrorTranslateCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	require.NoError(t, err)
	defer src.Close()
	tgt, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer tgt.Close()
	sb, tb := strings.Join(src.ListenAddrs(), ","), strings.Join(tgt.ListenAddrs(), ",")

	p, err := kgo.NewClient(kgo.SeedBrokers(src.ListenAddrs()...), kgo.DefaultProduceTopic("events"), kgo.TransactionalID("p"))
	require.NoError(t, err)
	defer p.Close()
	produce := func(n int, commit bool) {
		require.NoError(t, p.BeginTransaction())
		for range n {
			require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr())
		}
		require.NoError(t, p.EndTransaction(ctx, kgo.TransactionEndTry(commit)))
	}
	produce(10, true)
	produce(5, false)
	produce(10, true) // offsets 17-26, marker 27

	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- dispatch(mctx, []string{"mirror", "--source-brokers", sb, "--target-brokers", tb, "--topics", "events", "--instance-id", "t1"}, io.Discard)
	}()
	require.Eventually(t, func() bool {
		return dispatch(ctx, []string{"mirror-verify", "--source-brokers", sb, "--target-brokers", tb, "--topics", "events", "--whole"}, io.Discard) == nil
	}, 30*time.Second, 100*time.Millisecond)
	stop()
	require.NoError(t, <-done)

	sadm := kadm.NewClient(p)
	commit := func(group string, at int64) {
		require.NoError(t, sadm.CommitAllOffsets(ctx, group, kadm.Offsets{"events": {0: {Topic: "events", Partition: 0, At: at, LeaderEpoch: -1}}}))
	}
	// Source: committed 0-9 (marker 10), aborted 11-15 (marker 16),
	// committed 17-26 (marker 27). At 22 the group has read 15 records.
	commit("app", 22)
	args := []string{"--source-brokers", sb, "--target-brokers", tb, "--group", "app"}
	var out bytes.Buffer
	require.NoError(t, translateCmd(ctx, args, &out))
	require.Contains(t, out.String(), "translated")
	require.Contains(t, out.String(), "1 partitions translatable")

	out.Reset()
	require.NoError(t, translateCmd(ctx, append(args, "--commit"), &out), out.String())
	require.Contains(t, out.String(), "group app: committed 1 offsets on the target")
	tc, err := kgo.NewClient(kgo.SeedBrokers(tgt.ListenAddrs()...))
	require.NoError(t, err)
	defer tc.Close()
	offs, err := kadm.NewClient(tc).FetchOffsets(ctx, "app")
	require.NoError(t, err)
	o, ok := offs.Lookup("events", 0)
	require.True(t, ok)
	// On the target, the group resumes at the copy of source offset 22:
	// 5 records remain, as on the source.
	recs, err := exactlytest.ReadCommitted(ctx, tc, "events", exactlytest.ReadOptions{From: map[int32]int64{0: o.At}})
	require.NoError(t, err)
	require.Len(t, recs[0], 5)
	all, err := exactlytest.ReadCommitted(ctx, tc, "events", exactlytest.ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, all[0][15].Offset, recs[0][0].Offset)

	produce(3, true) // 28-30, marker 31: not mirrored
	commit("ahead", 31)
	out.Reset()
	err = translateCmd(ctx, []string{"--source-brokers", sb, "--target-brokers", tb, "--group", "app,ahead", "--commit"}, &out)
	require.Equal(t, 3, exitCode(err), "%v\n%s", err, out.String())
	require.Contains(t, out.String(), "not-yet-mirrored")
	if offs, err := kadm.NewClient(tc).FetchOffsets(ctx, "ahead"); err == nil {
		_, ok := offs.Lookup("events", 0)
		require.False(t, ok, "nothing committed for the group ahead")
	}
}
