package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// `exactly mirror` copies a topic to a second cluster; `exactly mirror
// verify` (and its old name mirror-verify) finds the copy exact (exit 0)
// until a stray record is written to the target (exit 3); `exactly mirror
// doctor` finds the stopped mirror healthy (0), lagging (4), then stuck
// while the source grows (5).
func TestMirrorCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "events"))
	require.NoError(t, err)
	defer src.Close()
	tgt, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer tgt.Close()
	sb, tb := strings.Join(src.ListenAddrs(), ","), strings.Join(tgt.ListenAddrs(), ",")

	p, err := kgo.NewClient(kgo.SeedBrokers(src.ListenAddrs()...), kgo.DefaultProduceTopic("events"))
	require.NoError(t, err)
	defer p.Close()
	for i := range 50 {
		require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Key: []byte{byte(i)}, Value: []byte("v")}).FirstErr())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	metricsAddr := ln.Addr().String()
	require.NoError(t, ln.Close())

	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- dispatch(mctx, []string{"mirror", "--source-brokers", sb, "--target-brokers", tb, "--topics", "events", "--instance-id", "t1", "--rename-prefix", "dc1.", "--metrics-addr", metricsAddr}, &out)
	}()
	verify := func(extra ...string) (string, error) {
		var b bytes.Buffer
		err := dispatch(ctx, append([]string{"mirror", "verify", "--source-brokers", sb, "--target-brokers", tb, "--topics", "events", "--rename-prefix", "dc1."}, extra...), &b)
		return b.String(), err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rep, err := verify("--whole")
		if err == nil {
			require.Contains(t, rep, "0 differences")
			break
		}
		require.False(t, time.Now().After(deadline), "never mirrored: %v\n%s", err, rep)
		time.Sleep(200 * time.Millisecond)
	}
	_, err = verify()
	require.NoError(t, err, "up to the mirrored positions")
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(body), `exactly_mirror_records_copied_total{mirror="mirror"} 50`)
	require.Contains(t, string(body), `exactly_mirror_lag{mirror="mirror",partition="0",topic="events"} 0`)
	stop()
	require.NoError(t, <-done)
	require.Contains(t, out.String(), "copied 50 records")
	var old bytes.Buffer
	require.NoError(t, dispatch(ctx, []string{"mirror-verify", "--source-brokers", sb, "--target-brokers", tb, "--topics", "events", "--rename-prefix", "dc1."}, &old))
	require.Contains(t, old.String(), "0 differences", "the old name still verifies")

	tc, err := kgo.NewClient(kgo.SeedBrokers(tgt.ListenAddrs()...))
	require.NoError(t, err)
	defer tc.Close()
	require.NoError(t, tc.ProduceSync(ctx, &kgo.Record{Topic: "dc1.events", Key: []byte("stray")}).FirstErr())
	rep, err := verify("--whole")
	require.Error(t, err)
	require.Equal(t, 3, exitCode(err), "%v", err)
	require.Contains(t, rep, "extra")
	ds, err := kadm.NewClient(tc).ListTopics(ctx, "dc1.events")
	require.NoError(t, err)
	require.Len(t, ds["dc1.events"].Partitions, 2)

	doctor := func(extra ...string) (string, int) {
		var b bytes.Buffer
		err := dispatch(ctx, append([]string{"mirror", "doctor", "--source-brokers", sb, "--target-brokers", tb, "--topics-regex", "^ev", "--rename-prefix", "dc1."}, extra...), &b)
		return b.String(), exitCode(err)
	}
	drep, code := doctor("--sample", "0")
	require.Equal(t, 0, code, drep)
	require.Contains(t, drep, "mirror doctor mirror: OK")
	require.Regexp(t, `events\[0\]\s+dc1\.events\[0\]`, drep)
	for i := range 5 {
		require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Key: []byte{byte(i)}, Value: []byte("late")}).FirstErr())
	}
	drep, code = doctor("--sample", "0", "--max-lag", "1")
	require.Equal(t, 4, code, drep)
	require.Contains(t, drep, "records wait to be copied")
	drep, code = doctor("--sample", "200ms", "--json")
	require.Equal(t, 5, code, drep)
	require.Contains(t, drep, `"check": "stuck"`)
}

func TestMirrorUsage(t *testing.T) {
	doctorArgs := []string{"mirror", "doctor", "--source-brokers", "a:1", "--target-brokers", "b:1", "--topics", "t"}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no source":        {[]string{"mirror", "--target-brokers", "b:1", "--topics", "t"}, "--source-brokers"},
		"no target":        {[]string{"mirror-verify", "--source-brokers", "b:1", "--topics", "t"}, "--target-brokers"},
		"both topics":      {[]string{"mirror", "--source-brokers", "a:1", "--target-brokers", "b:1", "--topics", "t", "--topics-regex", "x"}, "--topics-regex"},
		"bad regex":        {[]string{"mirror", "--source-brokers", "a:1", "--target-brokers", "b:1", "--topics-regex", "("}, "--topics-regex"},
		"verify no target": {[]string{"mirror", "verify", "--source-brokers", "b:1", "--topics", "t"}, "--target-brokers"},
		"unknown sub":      {[]string{"mirror", "verfy"}, `unknown mirror command "verfy": want verify, doctor or translate`},
		"doctor no topics": {[]string{"mirror", "doctor", "--source-brokers", "a:1", "--target-brokers", "b:1"}, "--topics"},
		"doctor max lag":   {append(doctorArgs, "--max-lag", "0"), "--max-lag"},
		"doctor sample":    {append(doctorArgs, "--sample", "-1s"), "--sample"},
		"doctor threshold": {append(doctorArgs, "--txn-threshold", "0s"), "--txn-threshold"},
		"doctor timeout":   {append(doctorArgs, "--sample", "1m"), "--timeout"},
		"no session":       {[]string{"mirror", "--source-brokers", "a:1", "--target-brokers", "b:1", "--topics", "t", "--session-timeout", "0s"}, "--session-timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			err := dispatch(context.Background(), tc.args, &bytes.Buffer{})
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, 2, exitCode(err))
		})
	}
}
