package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// smallMirrorConfig is a mirror suite run of every part over a small input.
func smallMirrorConfig(t *testing.T) (Config, *bytes.Buffer) {
	cfg := QuickConfig()
	cfg.Suite = SuiteMirror
	cfg.KfakeBrokers = 1
	cfg.Partitions = 3
	cfg.TopicPrefix = "t-"
	cfg.MirrorRecords = 3000
	cfg.TxnSizes = []int{100, 1000}
	cfg.CommitIntervals = []time.Duration{50 * time.Millisecond}
	cfg.Instances = []int{1, 2}
	cfg.ScaleTxnSize, cfg.ScaleCommitInterval = 100, 50*time.Millisecond
	cfg.LatencyRate, cfg.LatencyTxnSize, cfg.LatencyCommitInterval = 2000, 100, 50*time.Millisecond
	cfg.LatencyWarmup, cfg.LatencyDuration = 200*time.Millisecond, time.Second
	cfg.RunTimeout = time.Minute
	var progress bytes.Buffer
	cfg.Progress = &progress
	return cfg, &progress
}

// checkMirrorResults checks that every part ran, copied the whole input
// exactly (the target read back) and reports positive rates.
func checkMirrorResults(t *testing.T, res *Results, cfg Config) {
	t.Helper()
	mr := res.Mirror
	require.NotNil(t, mr)
	require.Equal(t, int64(cfg.MirrorRecords), mr.Records)
	require.Equal(t, int64(cfg.MirrorRecords*(8+cfg.MirrorValueBytes)), mr.Bytes)
	require.Len(t, mr.Throughput, 2)
	ms := []*MirrorMeasurement{}
	for _, cell := range mr.Throughput {
		require.NotNil(t, cell.Mirror)
		require.NotNil(t, cell.Ceiling)
		require.Positive(t, cell.CeilingRatio())
		ms = append(ms, cell.Mirror, cell.Ceiling)
	}
	require.Len(t, mr.Scaling, 2)
	for i := range mr.Scaling {
		require.Equal(t, cfg.Instances[i], mr.Scaling[i].Instances)
		ms = append(ms, &mr.Scaling[i].Measurement)
	}
	for _, m := range ms {
		require.Equal(t, int64(cfg.MirrorRecords), m.Records)
		require.Equal(t, int64(cfg.MirrorRecords), m.TargetRecords, "the target read back holds the input exactly")
		require.Positive(t, m.RecordsPerSec)
		require.Positive(t, m.MBPerSec)
		require.InDelta(t, m.RecordsPerSec*float64(8+cfg.MirrorValueBytes)/1e6, m.MBPerSec, 1e-6*m.MBPerSec)
		require.Positive(t, m.Transactions)
		require.Positive(t, m.Requests["EndTxn"].Count)
	}
	// A transaction holds at most txn size records.
	require.GreaterOrEqual(t, mr.Throughput[0].Mirror.Transactions, int64(cfg.MirrorRecords/100))
	require.GreaterOrEqual(t, mr.Throughput[0].Ceiling.Transactions, int64(cfg.MirrorRecords/100))

	require.Len(t, mr.Latency, 2)
	want := int(float64(cfg.LatencyRate) * cfg.LatencyDuration.Seconds())
	warm := int(float64(cfg.LatencyRate) * cfg.LatencyWarmup.Seconds())
	for i, copier := range []string{PartMirror, PartCeiling} {
		l := mr.Latency[i]
		require.Equal(t, copier, l.Copier)
		require.Equal(t, want, l.Events)
		require.Equal(t, warm, l.WarmupEvents)
		require.Equal(t, int64(want+warm), l.Copied, "every record copied once")
		require.Positive(t, l.P50)
		require.LessOrEqual(t, l.P50, l.P99)
		require.LessOrEqual(t, l.P99, l.Max)
		require.Positive(t, l.Transactions)
		require.Positive(t, l.Achieved)
	}
	var table bytes.Buffer
	require.NoError(t, res.WriteTable(&table))
	require.Contains(t, table.String(), "mirror/ceiling")
	require.Contains(t, table.String(), "end-to-end latency")
}

// TestMirrorSuiteTwoClusters runs the mirror suite between its two
// embedded clusters, the default.
func TestMirrorSuiteTwoClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every part of the mirror suite (a few seconds)")
	}
	t.Parallel()
	cfg, progress := smallMirrorConfig(t)
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err, progress.String())
	require.False(t, res.Mirror.SameCluster)
	require.NotEqual(t, res.Mirror.Source, res.Mirror.Target)
	checkMirrorResults(t, res, cfg)
}

// TestMirrorSuiteOneCluster: with only --brokers the target is the source
// cluster, and the report says so.
func TestMirrorSuiteOneCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every part of the mirror suite (a few seconds)")
	}
	t.Parallel()
	ctx := context.Background()
	c, err := openCluster(ctx, &Config{KfakeBrokers: 1, Replication: -1})
	require.NoError(t, err)
	defer c.close()
	cfg, progress := smallMirrorConfig(t)
	cfg.Brokers = c.brokers
	res, err := Run(ctx, cfg)
	require.NoError(t, err, progress.String())
	require.True(t, res.Mirror.SameCluster)
	checkMirrorResults(t, res, cfg)
	var table bytes.Buffer
	require.NoError(t, res.WriteTable(&table))
	require.Contains(t, table.String(), "source and target are ONE cluster")
}

func TestMirrorFlags(t *testing.T) {
	t.Parallel()
	c, err := parseFlags(t, false, "--suite", "mirror", "--brokers", "a:1", "--target-brokers", "b:1,b:2", "--skip", "mirror,latency", "--mirror-records", "50")
	require.NoError(t, err)
	require.Equal(t, SuiteMirror, c.Suite)
	require.Equal(t, []string{"b:1", "b:2"}, c.TargetBrokers)
	require.Equal(t, 50, c.MirrorRecords)
	require.False(t, c.runs(PartMirror))
	require.True(t, c.runs(PartCeiling))
	q, err := parseFlags(t, true, "--suite", "mirror")
	require.NoError(t, err)
	require.Equal(t, QuickConfig().MirrorRecords, q.MirrorRecords)

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown suite":         {[]string{"--suite", "nope"}, "--suite"},
		"target without suite":  {[]string{"--brokers", "a:1", "--target-brokers", "b:1"}, "--target-brokers"},
		"target without source": {[]string{"--suite", "mirror", "--target-brokers", "b:1"}, "--target-brokers: needs --brokers"},
		"pipeline part":         {[]string{"--suite", "mirror", "--skip", "restore"}, `--skip: unknown part "restore" of the mirror suite`},
		"mirror part":           {[]string{"--skip", "mirror"}, `--skip: unknown part "mirror" of the pipeline suite`},
		"no records":            {[]string{"--suite", "mirror", "--mirror-records", "0"}, "--mirror-records"},
		"tiny values":           {[]string{"--suite", "mirror", "--mirror-value-bytes", "7"}, "--mirror-value-bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseFlags(t, false, tc.args...)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestMirrorLatencyCountsTheLastCommit: the latency run stops the mirror
// as soon as its consumer has read every record, usually before the next
// sample of the mirror's Stats; what the mirror committed since the last
// sample still counts. Sampling once a second, as here, the last commits
// are almost never sampled before the stop (a 2 ms sample missed them in
// CI under load: 2384 of 2400).
func TestMirrorLatencyCountsTheLastCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the mirror suite's latency part (a few seconds)")
	}
	every := statsEvery
	statsEvery = time.Second // not parallel: restored before parallel tests resume
	defer func() { statsEvery = every }()
	cfg, progress := smallMirrorConfig(t)
	cfg.Skip = []string{PartMirror, PartCeiling, PartScaling}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err, progress.String())
	require.Len(t, res.Mirror.Latency, 1)
	l := res.Mirror.Latency[0]
	want := int(float64(cfg.LatencyRate)*cfg.LatencyDuration.Seconds()) + int(float64(cfg.LatencyRate)*cfg.LatencyWarmup.Seconds())
	require.Equal(t, int64(want), l.Copied, "every record copied once")
}
