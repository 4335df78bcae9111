package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/admin"
)

// opsCluster starts a three-broker kfake cluster for one test and returns
// its seed list and an admin client.
func opsCluster(t *testing.T) (string, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return strings.Join(c.ListenAddrs(), ","), kadm.NewClient(cl)
}

func runCLI(args ...string) (string, error) {
	var out bytes.Buffer
	err := dispatch(context.Background(), args, &out)
	return out.String(), err
}

func TestTopicsCreateThenCheck(t *testing.T) {
	t.Parallel()
	brokers, _ := opsCluster(t)
	out, err := runCLI("topics", "create", "--brokers", brokers, "--topic-prefix", "cli-", "--partitions", "3", "--min-insync-replicas", "2")
	require.NoError(t, err, out)
	require.Contains(t, out, "created cli-orders\n")
	require.Contains(t, out, "created cli-exactly-payments-payments-state-changelog\n")
	require.Contains(t, out, "topics: OK")

	out, err = runCLI("topics", "check", "--brokers", brokers, "--topic-prefix", "cli-", "--partitions", "3", "--min-insync-replicas", "2", "--json")
	require.NoError(t, err, out)
	var r admin.TopicsReport
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	require.True(t, r.OK())
	require.Len(t, r.Topics, 8)
	require.Empty(t, r.Created)
}

func TestTopicsCheckMismatchExits3(t *testing.T) {
	t.Parallel()
	brokers, adm := opsCluster(t)
	_, err := adm.CreateTopic(context.Background(), 3, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, "mm-exactly-orders-customers-changelog")
	require.NoError(t, err)

	out, err := runCLI("topics", "check", "--brokers", brokers, "--topic-prefix", "mm-", "--partitions", "3")
	require.Error(t, err)
	require.Equal(t, 3, exitCode(err))
	require.Contains(t, err.Error(), "topics check: 8 mismatches")
	require.Contains(t, out, "mm-orders: missing (want 3 partitions)")
	require.Contains(t, out, "mm-exactly-orders-customers-changelog: changelog has cleanup.policy=delete, want compact")

	out, err = runCLI("topics", "create", "--brokers", brokers, "--topic-prefix", "mm-", "--partitions", "3", "--json")
	require.Equal(t, 3, exitCode(err), out)
	var r admin.TopicsReport
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	require.Len(t, r.Created, 7, "create adds what is missing and leaves the existing changelog alone")
	require.Equal(t, []admin.Mismatch{{
		Topic: "mm-exactly-orders-customers-changelog", Kind: admin.MismatchCleanupPolicy, Have: "delete", Want: "compact",
		Message: "changelog has cleanup.policy=delete, want compact",
	}}, r.Mismatches)
}

func TestOpsUsageErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no subcommand":      {[]string{"topics"}, "topics create|check"},
		"bad subcommand":     {[]string{"topics", "delete"}, `unknown topics command "delete": want create or check`},
		"no brokers":         {[]string{"topics", "check"}, "--brokers"},
		"bad partitions":     {[]string{"topics", "create", "--brokers", "b:1", "--partitions", "0"}, "partitions"},
		"bad replication":    {[]string{"topics", "create", "--brokers", "b:1", "--replication-factor", "0"}, "replication factor"},
		"min isr above rf":   {[]string{"topics", "create", "--brokers", "b:1", "--replication-factor", "2", "--min-insync-replicas", "3"}, "min.insync.replicas 3 exceeds"},
		"unknown flag":       {[]string{"topics", "check", "--nope"}, "nope"},
		"doctor no brokers":  {[]string{"doctor"}, "--brokers"},
		"doctor bad thresh":  {[]string{"doctor", "--brokers", "b:1", "--txn-threshold", "0s"}, "--txn-threshold"},
		"doctor stray arg":   {[]string{"doctor", "--brokers", "b:1", "now"}, "now"},
		"doctor bad timeout": {[]string{"doctor", "--brokers", "b:1", "--timeout", "soon"}, "timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runCLI(tc.args...)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, 2, exitCode(err), err.Error())
		})
	}
}
