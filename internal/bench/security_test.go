package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/kafkaauth/kafkaauthtest"
)

// scram512 is how a test client of a kafkaauthtest cluster connects as
// user with password: SCRAM-SHA-512 over TLS.
func scram512(c *kafkaauthtest.Cluster, user, password string) kafkaauth.Config {
	return kafkaauth.Config{
		TLS:  kafkaauth.TLS{CAFile: c.Certs.CAFile},
		SASL: kafkaauth.SASL{Mechanism: kafkaauth.ScramSHA512, Username: user, Password: kafkaauth.Secret(password)},
	}
}

// TestPipelineSuiteOnSecuredCluster: every part of the pipeline suite,
// the RSS child (`exactly run`, given the settings by environment)
// included, runs on a cluster that takes only SASL SCRAM over TLS: a
// client without Config.Security cannot even reach it. A wrong password
// stops the run at once with an *AuthError.
func TestPipelineSuiteOnSecuredCluster(t *testing.T) {
	c := kafkaauthtest.Start(t, 1, false)
	cfg := QuickConfig()
	cfg.Brokers = []string{c.Brokers}
	cfg.Security = scram512(c, kafkaauthtest.Scram512, kafkaauthtest.Password)
	cfg.Partitions, cfg.TopicPrefix = 2, "sec-"
	cfg.Orders, cfg.Customers = 500, 20
	cfg.TxnSizes, cfg.CommitIntervals = []int{100}, []time.Duration{100 * time.Millisecond}
	cfg.LatencyWarmup, cfg.LatencyDuration, cfg.LatencyRate = 200*time.Millisecond, time.Second, 200
	cfg.RestoreCustomers, cfg.RSSOrders = 500, 50
	cfg.Instances = []int{1}
	cfg.RunTimeout = time.Minute
	cfg.Dir = t.TempDir()
	cfg.Exe = buildExactly(t)
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, res.Throughput, 1)
	cell := res.Throughput[0]
	for _, m := range []*Measurement{cell.Pipeline, cell.Ceiling, cell.AtLeastOnce} {
		require.NotNil(t, m)
		require.Equal(t, int64(500), m.Records)
	}
	require.NotNil(t, res.Latency)
	require.Positive(t, res.Latency.Events)
	require.NotNil(t, res.Restore)
	require.Equal(t, int64(2*500), res.Restore.FromEmpty.Records)
	require.NotNil(t, res.RSS, "the RSS child connected with the settings of its environment")
	require.Equal(t, 500, res.RSS.Customers)
	require.Len(t, res.Scaling, 1)

	cfg.Security.SASL.Password = "wrong-Pa55word"
	cfg.TopicPrefix = "sec-wrong-"
	begin := time.Now()
	_, err = Run(context.Background(), cfg)
	_, isAuth := errors.AsType[*kafkaauth.AuthError](err)
	require.True(t, isAuth, "want an *AuthError, got %v", err)
	require.Less(t, time.Since(begin), 20*time.Second, "a refused password fails at once, not after the ping timeout")
	require.NotContains(t, err.Error(), "wrong-Pa55word")
}

// TestMirrorSuiteOnSecuredClusters: the mirror suite copies between two
// clusters that each take only their own user over SASL SCRAM and TLS;
// every client of each side, the mirror's included, has that side's
// settings (the users are swapped in the second run, and refused).
func TestMirrorSuiteOnSecuredClusters(t *testing.T) {
	src := kafkaauthtest.Start(t, 1, false, kfake.Superuser(kafkaauth.ScramSHA512, "bench-source", "source-Pa55word"))
	tgt := kafkaauthtest.Start(t, 1, false, kfake.Superuser(kafkaauth.ScramSHA512, "bench-target", "target-Pa55word"))
	cfg, progress := smallMirrorConfig(t)
	cfg.Brokers, cfg.TargetBrokers = []string{src.Brokers}, []string{tgt.Brokers}
	cfg.Security = scram512(src, "bench-source", "source-Pa55word")
	cfg.TargetSecurity = scram512(tgt, "bench-target", "target-Pa55word")
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err, progress.String())
	checkMirrorResults(t, res, cfg)

	cfg.TopicPrefix = "swapped-"
	cfg.Security.SASL, cfg.TargetSecurity.SASL = cfg.TargetSecurity.SASL, cfg.Security.SASL
	_, err = Run(context.Background(), cfg)
	_, isAuth := errors.AsType[*kafkaauth.AuthError](err)
	require.True(t, isAuth, "want an *AuthError, got %v", err)
	require.ErrorContains(t, err, "source: authentication failed at "+src.Brokers+" with SASL SCRAM-SHA-512 as user bench-target over TLS")
}

// TestSecurityNeedsARealCluster: the embedded kfake cluster is plain, so
// security settings without the brokers they are for are refused, naming
// the missing flag.
func TestSecurityNeedsARealCluster(t *testing.T) {
	t.Parallel()
	sec := kafkaauth.Config{TLS: kafkaauth.TLS{Enable: true}}
	cfg := QuickConfig()
	cfg.Security = sec
	require.ErrorContains(t, cfg.Validate(), "--brokers: is required with connection security (TLS)")
	cfg = QuickConfig()
	cfg.Suite, cfg.Brokers, cfg.TargetSecurity = SuiteMirror, []string{"127.0.0.1:1"}, sec
	require.ErrorContains(t, cfg.Validate(), "--target-brokers: is required with target connection security (TLS)")
	cfg.TargetBrokers = []string{"127.0.0.1:2"}
	require.NoError(t, cfg.Validate())
}
