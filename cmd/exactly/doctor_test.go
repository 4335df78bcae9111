package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/admin"
)

// TestDoctorCLI runs the doctor on a provisioned pipeline: warnings (the
// groups never ran) exit 4; with both groups committed it is OK and
// exits 0; a transaction left open past the threshold is critical, exits
// 5 and is named in the table and in the JSON.
func TestDoctorCLI(t *testing.T) {
	t.Parallel()
	brokers, adm := opsCluster(t)
	_, err := runCLI("topics", "create", "--brokers", brokers, "--topic-prefix", "d-", "--partitions", "2")
	require.NoError(t, err)

	out, err := runCLI("doctor", "--brokers", brokers, "--topic-prefix", "d-")
	require.Equal(t, 4, exitCode(err), "%v\n%s", err, out)
	require.Contains(t, out, "doctor: WARNING")
	require.Contains(t, out, "group does not exist")

	for group, topic := range map[string]string{"d-exactly-orders": "d-orders", "d-exactly-payments": "d-order-events"} {
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
		require.NoError(t, adm.CommitAllOffsets(context.Background(), group, os))
	}
	out, err = runCLI("doctor", "--brokers", brokers, "--topic-prefix", "d-")
	require.NoError(t, err, out)
	for _, s := range []string{"doctor: OK", "BROKERS", "TOPICS", "GROUP d-exactly-payments: Empty, 0 members, 0 records waiting in d-order-events"} {
		require.Contains(t, out, s)
	}
	require.Regexp(t, `d-exactly-orders-customers-changelog +2 +3 +1 +0 +0 +0\n`, out)
	require.NotContains(t, out, "FINDINGS")

	tc, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.TransactionalID("cli-hang"),
		kgo.TransactionTimeout(5*time.Minute), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer tc.Close()
	require.NoError(t, tc.BeginTransaction())
	require.NoError(t, tc.ProduceSync(context.Background(), &kgo.Record{Topic: "d-orders", Partition: 1, Value: []byte("x")}).FirstErr())

	var r admin.Report
	pollUntil(t, 10*time.Second, "the open transaction reported", func() bool {
		out, err = runCLI("doctor", "--brokers", brokers, "--topic-prefix", "d-", "--txn-threshold", "1ms", "--json")
		r = admin.Report{}
		require.NoError(t, json.Unmarshal([]byte(out), &r), out)
		return exitCode(err) == 5
	})
	require.Equal(t, admin.Critical, r.Severity)
	require.Equal(t, admin.CheckTransactions, r.Findings[0].Check)
	require.Equal(t, "cli-hang", r.Findings[0].Subject)
	require.Len(t, r.Transactions, 1)
	require.Equal(t, []string{"d-orders[1]"}, r.Transactions[0].HoldsBack)

	out, err = runCLI("doctor", "--brokers", brokers, "--topic-prefix", "d-", "--txn-threshold", "1ms")
	require.Equal(t, 5, exitCode(err))
	for _, s := range []string{"doctor: CRITICAL", "critical  transactions  cli-hang", "LAST STABLE OFFSET BELOW HIGH WATERMARK", "OPEN TRANSACTIONS"} {
		require.Contains(t, out, s)
	}
	require.Regexp(t, `d-orders\[1\] +0 +1 +cli-hang \(producer \d+/\d+\) +0 `, out)
}

func TestDoctorBrokersFromEnvironment(t *testing.T) {
	t.Setenv("EXACTLY_BROKERS", "127.0.0.1:1")
	t.Setenv("EXACTLY_TIMEOUT", "1s")
	out, err := runCLI("doctor", "--json")
	require.Equal(t, 5, exitCode(err), out)
	var r admin.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	require.Equal(t, admin.CheckBrokers, r.Findings[0].Check)
}

// pollUntil polls cond every 20ms until it holds or timeout passes.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
