package app

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly-stream/exactly/admin"
)

// TestTopicsTakeTheExistingInputsCount: `topics check` held an existing
// input to --partitions' default (6), so a healthy cluster whose input has
// 3 partitions failed ("has 3 partitions, want 6", exit 3) unless
// --partitions was repeated. Without --partitions (flag or environment)
// an existing input's count is the reference; given, the input is held
// to it. The dead-letter topic shows as such, and one mismatch is "1
// mismatch".
func TestTopicsTakeTheExistingInputsCount(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "lines"))
	require.NoError(t, err)
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")

	out, _, err := runApp(testConfig(), "topics", "create", "--brokers", brokers)
	require.NoError(t, err, out)
	require.Contains(t, out, "topics: OK")
	out, _, err = runApp(testConfig(), "topics", "check", "--brokers", brokers)
	require.NoError(t, err, out)
	require.Regexp(t, `wordcount-dlq\s+dead-letter\s+3\s+3`, out)
	require.Regexp(t, `lines\s+input\s+3\s+3`, out)

	out, _, err = runApp(testConfig(), "topics", "check", "--brokers", brokers, "--partitions", "6")
	require.Equal(t, ExitViolations, ExitCode(err), out)
	require.EqualError(t, err, "topics check: 1 mismatch")
	require.Contains(t, out, "topics: 1 mismatch\n")
	require.Contains(t, out, "lines: has 3 partitions, want 6")

	t.Setenv("WC_PARTITIONS", "6")
	out, _, err = runApp(testConfig(), "topics", "check", "--brokers", brokers, "--json")
	require.Equal(t, ExitViolations, ExitCode(err), out)
	var r admin.TopicsReport
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	require.Len(t, r.Mismatches, 1)
	roles := map[string]string{}
	for _, ts := range r.Topics {
		roles[ts.Topic] = ts.Role
	}
	require.Equal(t, map[string]string{"lines": "input", "word-counts": "output", "wordcount-dlq": "dead-letter",
		"wordcount-words-changelog": "changelog"}, roles, out)
}

// TestTopicsCreateMissingInputWithTheDefault: an input that does not exist
// yet is created with --partitions' default.
func TestTopicsCreateMissingInputWithTheDefault(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	out, _, err := runApp(testConfig(), "topics", "create", "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--json")
	require.NoError(t, err, out)
	var r admin.TopicsReport
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	require.Contains(t, r.Created, "lines")
	for _, ts := range r.Topics {
		require.Equal(t, int32(6), ts.Partitions, ts.Topic)
	}
}
