package app

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestMissingSourceTopicIsAConfigurationError: a configuration error the
// processor finds once the broker answered (here a source topic that does
// not exist) exited 1, as a runtime failure; it exits 2 and names the
// topic.
func TestMissingSourceTopicIsAConfigurationError(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	begin := time.Now()
	_, _, err = runApp(testConfig(), "run", "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--state-dir", t.TempDir(),
		"--log-level", "error")
	require.ErrorContains(t, err, "source topic lines")
	require.Equal(t, ExitUsage, ExitCode(err), err.Error())
	require.Less(t, time.Since(begin), 30*time.Second)
}
