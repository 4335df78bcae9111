package bench

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func parseFlags(t *testing.T, quick bool, args ...string) (Config, error) {
	t.Helper()
	c := DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if quick {
		c.ApplyQuick(fs)
	}
	return c, c.Validate()
}

func TestFlags(t *testing.T) {
	t.Parallel()
	c, err := parseFlags(t, false, "--brokers", "a:1, b:2", "--txn-sizes", "10,20", "--commit-intervals", "50ms,2s",
		"--instances", "1,4", "--skip", "rss,latency", "--partitions", "3", "--replication-factor", "3")
	require.NoError(t, err)
	require.Equal(t, []string{"a:1", "b:2"}, c.Brokers)
	require.Equal(t, []int{10, 20}, c.TxnSizes)
	require.Equal(t, []time.Duration{50 * time.Millisecond, 2 * time.Second}, c.CommitIntervals)
	require.Equal(t, []int{1, 4}, c.Instances)
	require.Equal(t, int32(3), c.Partitions)
	require.Equal(t, int16(3), c.Replication)
	require.False(t, c.runs(PartRSS))
	require.False(t, c.runs(PartLatency))
	require.True(t, c.runs(PartPipeline))
}

func TestQuickKeepsExplicitFlags(t *testing.T) {
	t.Parallel()
	q := QuickConfig()
	c, err := parseFlags(t, true, "--orders", "777")
	require.NoError(t, err)
	require.Equal(t, 777, c.Orders, "an explicit flag wins over --quick")
	require.Equal(t, q.RestoreCustomers, c.RestoreCustomers)
	require.Equal(t, q.LatencyDuration, c.LatencyDuration)
	require.Equal(t, DefaultConfig().TxnSizes, c.TxnSizes, "quick keeps the grid")
}

func TestBadFlagsNameTheFlag(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"zero txn size":     {[]string{"--txn-sizes", "100,0"}, "positive integers"},
		"bad interval":      {[]string{"--commit-intervals", "soon"}, "positive durations"},
		"bad partitions":    {[]string{"--partitions", "x"}, "want an integer"},
		"zero partitions":   {[]string{"--partitions", "0"}, "--partitions"},
		"zero replication":  {[]string{"--replication-factor", "0"}, "--replication-factor"},
		"unknown part":      {[]string{"--skip", "ceiling,nope"}, `--skip: unknown part "nope"`},
		"negative rate":     {[]string{"--latency-rate", "-1"}, "--latency-rate"},
		"no restore":        {[]string{"--restore-customers", "0"}, "--restore-customers"},
		"zero instances":    {[]string{"--instances", "0"}, "positive integers"},
		"zero run timeout":  {[]string{"--run-timeout", "0s"}, "--run-timeout"},
		"no kfake brokers":  {[]string{"--kfake-brokers", "0"}, "--kfake-brokers"},
		"no orders":         {[]string{"--orders", "0"}, "--orders"},
		"no latency length": {[]string{"--latency-duration", "0s"}, "--latency-duration"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseFlags(t, false, tc.args...)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
