package mirror

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/kafkaauth/kafkaauthtest"
)

// securedClient returns a client of c secured by sec, with opts added.
func securedClient(t *testing.T, c *kafkaauthtest.Cluster, sec kafkaauth.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	so, err := sec.Opts()
	require.NoError(t, err)
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers), kgo.MetadataMinAge(50 * time.Millisecond)}, so...), opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// TestMirrorBetweenSecuredClusters: a mirror copies committed records,
// and only those, between two clusters that each take only their own user
// over SASL SCRAM and TLS (the target also requires a client
// certificate), its source and target clients secured by SourceOpts and
// TargetOpts; Verify through secured clients finds no difference, up to
// the mirrored positions and whole. The other cluster's user is refused
// on each side, so a mirror with the settings crossed could not pass.
func TestMirrorBetweenSecuredClusters(t *testing.T) {
	t.Parallel()
	src := kafkaauthtest.Start(t, 1, false, kfake.Superuser(kafkaauth.ScramSHA512, "mirror-source", "source-Pa55word"))
	tgt := kafkaauthtest.Start(t, 1, true, kfake.Superuser(kafkaauth.ScramSHA256, "mirror-target", "target-Pa55word"))
	srcSec := kafkaauth.Config{TLS: kafkaauth.TLS{CAFile: src.Certs.CAFile},
		SASL: kafkaauth.SASL{Mechanism: kafkaauth.ScramSHA512, Username: "mirror-source", Password: "source-Pa55word"}}
	tgtSec := kafkaauth.Config{TLS: kafkaauth.TLS{CAFile: tgt.Certs.CAFile, CertFile: tgt.Certs.ClientCertFile, KeyFile: tgt.Certs.ClientKeyFile},
		SASL: kafkaauth.SASL{Mechanism: kafkaauth.ScramSHA256, Username: "mirror-target", Password: "target-Pa55word"}}
	srcCl, tgtCl := securedClient(t, src, srcSec), securedClient(t, tgt, tgtSec)
	mkTopic(t, kadm.NewClient(srcCl), "events", 3)

	p := securedClient(t, src, srcSec, kgo.TransactionalID("src-txn"))
	now := time.Now().Truncate(time.Millisecond)
	produceTxn(t, p, "events", "ok1", 40, true, now)
	produceTxn(t, p, "events", "bad", 20, false, now)
	produceTxn(t, p, "events", "ok2", 40, true, now)

	srcOpts, err := srcSec.Opts()
	require.NoError(t, err)
	tgtOpts, err := tgtSec.Opts()
	require.NoError(t, err)
	m, err := New("mm",
		SourceBrokers(src.Brokers), TargetBrokers(tgt.Brokers), Topics("events"), InstanceID("sec"),
		CommitInterval(50*time.Millisecond), TransactionTimeout(5*time.Second), FetchMaxWait(100*time.Millisecond),
		WithLogger(testLogger(t)), SourceOpts(srcOpts...), TargetOpts(tgtOpts...),
		SourceOpts(kgo.HeartbeatInterval(100*time.Millisecond), kgo.SessionTimeout(6*time.Second)))
	require.NoError(t, err)
	r := start(t, m)

	var rep *Report
	require.Eventually(t, func() bool {
		rep, err = Verify(ctxT(t), srcCl, tgtCl, []string{"events"}, VerifyOptions{Timeout: 10 * time.Second})
		return err == nil && rep.Differences() == 0
	}, 30*time.Second, 100*time.Millisecond, "never mirrored: %v", err)
	s, tg := totalRecords(rep)
	require.Equal(t, 80, s)
	require.Equal(t, 80, tg)
	rep, err = Verify(ctxT(t), srcCl, tgtCl, []string{"events"}, VerifyOptions{OffsetsTopic: "mm-mirror-offsets", Timeout: 10 * time.Second})
	require.NoError(t, err)
	require.Zero(t, rep.Differences(), "differences up to the mirrored positions")
	require.EqualValues(t, 80, m.Stats().RecordsCopied)
	require.NoError(t, r.stop(t))

	// Each cluster refuses the other's user: the test would catch
	// crossed settings.
	for _, tc := range []struct {
		c   *kafkaauthtest.Cluster
		sec kafkaauth.Config
	}{
		{src, kafkaauth.Config{TLS: srcSec.TLS, SASL: tgtSec.SASL}},
		{tgt, kafkaauth.Config{TLS: tgtSec.TLS, SASL: srcSec.SASL}},
	} {
		cl := securedClient(t, tc.c, tc.sec)
		err := cl.Ping(ctxT(t))
		require.Error(t, err)
		require.ErrorContains(t, kafkaauth.Check(cl, err, tc.c.Brokers), "authentication failed")
	}
}
