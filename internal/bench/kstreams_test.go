package bench

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/orders"
)

// buildPeerJar builds the Kafka Streams peer with Maven (bench/kstreams)
// unless its jar is newer than its sources, and returns the jar; it skips
// when java or mvn is missing. EXACTLY_KSTREAMS_PEER_JAR names a jar built
// elsewhere instead (to check that the test fails on a broken peer).
func buildPeerJar(t *testing.T) string {
	t.Helper()
	if jar := os.Getenv("EXACTLY_KSTREAMS_PEER_JAR"); jar != "" {
		return jar
	}
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the Kafka Streams peer needs %s: %v", tool, err)
		}
	}
	dir, err := filepath.Abs("../../bench/kstreams")
	require.NoError(t, err)
	jar := filepath.Join(dir, "target", "exactly-kstreams-peer.jar")
	if upToDate(t, jar, filepath.Join(dir, "pom.xml"), filepath.Join(dir, "src")) {
		return jar
	}
	cmd := exec.Command("mvn", "-q", "-B", "package")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return jar
}

// upToDate reports whether target exists and is newer than every file
// under srcs, as make would decide.
func upToDate(t *testing.T, target string, srcs ...string) bool {
	t.Helper()
	ti, err := os.Stat(target)
	if err != nil {
		return false
	}
	newer := false
	for _, src := range srcs {
		require.NoError(t, filepath.WalkDir(src, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err == nil && !d.IsDir() && info.ModTime().After(ti.ModTime()) {
				newer = true
			}
			return err
		}))
	}
	return !newer
}

// TestKStreamsPeerIsExactlyOnce runs the Kafka Streams peer (two stream
// threads, requesting a commit every 50 records) over orders with
// malformed records and duplicates on the cluster of KAFKA_BROKERS, until its group
// committed all of them, and checks its output with examples/orders Verify
// (E1-E3, E5): the peer is the same application as exactly's, on the same
// wire format, or the side-by-side figures compare different work.
func TestKStreamsPeerIsExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Kafka Streams peer with Maven and runs a JVM (about 30 s)")
	}
	brokers := os.Getenv("KAFKA_BROKERS")
	if brokers == "" {
		// Kafka Streams 4.4 fails on kfake (franz-go v1.22.2): its admin
		// client rejects kfake's CreateTopics config sources ("id should be
		// positive, id: -1") and DescribeTopicPartitions answers without
		// eligible leader replicas (a NullPointerException).
		t.Skip("the Kafka Streams peer needs a real cluster: set KAFKA_BROKERS (make kafka-up starts one)")
	}
	jar := buildPeerJar(t)
	ctx := context.Background()
	c, err := openCluster(ctx, &Config{Brokers: strings.Split(brokers, ","), Replication: -1, KeepTopics: true})
	require.NoError(t, err)
	t.Cleanup(c.close)
	prefix := fmt.Sprintf("kstreams-peer-test-%d-", time.Now().UnixNano())
	in := prefix + "in"
	const n = 400
	st := produceTestInput(t, c, in, n)
	r := &runner{
		cfg:     Config{Partitions: 3, PeerJar: jar, RunTimeout: 2 * time.Minute, Dir: t.TempDir()},
		cluster: c, input: in, inputCount: n,
	}
	m, err := r.kstreams(ctx, prefix+"app", 100*time.Millisecond, 2, 50)
	require.NoError(t, err)
	require.Equal(t, int64(n), m.Records)

	a := newApp(prefix+"app", in)
	t.Cleanup(func() {
		c.keep = false
		c.cleanup(ctx, append(kstreamsTopics(a), in), a.group)
	})
	rep, err := orders.Verify(ctx, c.cl, orders.VerifyOptions{
		OrdersTopic: a.topics.Orders, EventsTopic: a.topics.Events, DLQTopic: a.topics.DLQ,
	})
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, st.Valid, rep.Events)
	require.Equal(t, st.Malformed, rep.DLQ)
	require.Positive(t, st.Duplicates, "the input holds duplicates for the order-id store to drop")
}
