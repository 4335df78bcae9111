package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/kafkaauth/kafkaauthtest"
)

// mirrorSpec is the mirror of mirrorArgs.
var mirrorSpec = admin.MirrorACLSpec{Name: "mirror", Topics: []string{"orders"}, RenamePrefix: "dc1.", CreateTopics: true}

// mirrorSecured returns the --source-* or --target-* connection flags of
// user on c.
func mirrorSecured(side string, c *kafkaauthtest.Cluster, user string) []string {
	p := "--" + side + "-"
	return []string{p + "brokers", c.Brokers, p + "tls-ca-file", c.Certs.CAFile, p + "sasl-mechanism", "SCRAM-SHA-512",
		p + "sasl-username", user, p + "sasl-password", kafkaauthtest.Password}
}

// TestMirrorACLsAreEnough: a mirror whose source user holds exactly
// MirrorSourceACLs and whose target user holds exactly MirrorTargetACLs
// creates the target topic and the offsets topic and copies the source
// exactly (mirror verify, run by superusers, finds no difference).
func TestMirrorACLsAreEnough(t *testing.T) {
	t.Parallel()
	src := kafkaauthtest.Start(t, 1, false, kfake.EnableACLs(), kfake.SeedTopics(2, "orders"),
		kfake.User("SCRAM-SHA-512", "mirror-src", kafkaauthtest.Password, seedACLs(admin.MirrorSourceACLs(mirrorSpec))...))
	tgt := kafkaauthtest.Start(t, 1, false, kfake.EnableACLs(),
		kfake.User("SCRAM-SHA-512", "mirror-tgt", kafkaauthtest.Password, seedACLs(admin.MirrorTargetACLs(mirrorSpec))...))
	out, err := runCLI(append([]string{"produce", "--count", "50", "--customers", "5", "--seed", "1"}, secured(src, aclAdmin)...)...)
	require.NoError(t, err, out)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var logs syncBuffer
	go func() { // ended by cancel below
		args := append(append([]string{"mirror", "--topics", "orders", "--rename-prefix", "dc1.", "--instance-id", "m1"},
			mirrorSecured("source", src, "mirror-src")...), mirrorSecured("target", tgt, "mirror-tgt")...)
		done <- dispatch(ctx, args, &logs)
	}()
	require.Eventually(t, func() bool {
		var b bytes.Buffer
		args := append(append([]string{"mirror", "verify", "--topics", "orders", "--rename-prefix", "dc1.", "--whole"},
			mirrorSecured("source", src, aclAdmin)...), mirrorSecured("target", tgt, aclAdmin)...)
		err = dispatch(ctx, args, &b)
		out = b.String()
		return err == nil
	}, 60*time.Second, 200*time.Millisecond, "never mirrored: %v\n%s\nmirror:\n%s", err, out, logs.String())
	require.Contains(t, out, "0 differences")
	cancel()
	require.NoError(t, <-done, logs.String())
}

// TestMirrorACLsEachNeeded: without any one entry of the mirror's sets
// (on either cluster), the mirror fails with an authorization error or
// does not copy everything within its run; without READ or
// DESCRIBE_CONFIGS on the offsets topic, which a first start on a topic
// it creates does not use, the restarted mirror fails or copies nothing.
func TestMirrorACLsEachNeeded(t *testing.T) {
	t.Parallel()
	srcACLs, tgtACLs := admin.MirrorSourceACLs(mirrorSpec), admin.MirrorTargetACLs(mirrorSpec)
	type removal struct {
		side    string
		missing admin.ACL
		src     []admin.ACL
		tgt     []admin.ACL
	}
	var cases []removal
	for i, a := range srcACLs {
		cases = append(cases, removal{"source", a, append(append([]admin.ACL{}, srcACLs[:i]...), srcACLs[i+1:]...), tgtACLs})
	}
	for i, a := range tgtACLs {
		cases = append(cases, removal{"target", a, srcACLs, append(append([]admin.ACL{}, tgtACLs[:i]...), tgtACLs[i+1:]...)})
	}
	for _, tc := range cases {
		t.Run(tc.side+" "+tc.missing.String(), func(t *testing.T) {
			t.Parallel()
			src := kafkaauthtest.Start(t, 1, false, kfake.EnableACLs(), kfake.SeedTopics(2, "orders"),
				kfake.User("SCRAM-SHA-512", "mirror-src", kafkaauthtest.Password, seedACLs(tc.src)...))
			tgt := kafkaauthtest.Start(t, 1, false, kfake.EnableACLs(),
				kfake.User("SCRAM-SHA-512", "mirror-tgt", kafkaauthtest.Password, seedACLs(tc.tgt)...))
			out, err := runCLI(append([]string{"produce", "--count", "50", "--customers", "5", "--seed", "1"}, secured(src, aclAdmin)...)...)
			require.NoError(t, err, out)
			mirrorFor := func(d time.Duration) (string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), d)
				defer cancel()
				var logs syncBuffer
				args := append(append([]string{"mirror", "--topics", "orders", "--rename-prefix", "dc1.", "--instance-id", "m1"},
					mirrorSecured("source", src, "mirror-src")...), mirrorSecured("target", tgt, "mirror-tgt")...)
				err := dispatch(ctx, args, &logs)
				return logs.String(), err
			}
			verify := func() error {
				var b bytes.Buffer
				args := append(append([]string{"mirror", "verify", "--topics", "orders", "--rename-prefix", "dc1.", "--whole"},
					mirrorSecured("source", src, aclAdmin)...), mirrorSecured("target", tgt, aclAdmin)...)
				return dispatch(context.Background(), args, &b)
			}
			logs, err := mirrorFor(8 * time.Second)
			if err != nil {
				require.Contains(t, err.Error(), tc.missing.Resource.String()+"_AUTHORIZATION_FAILED", "mirror without %s", tc.missing)
			}
			if verify() != nil {
				return // nothing (or not everything) copied
			}
			// The offsets topic is created empty on a first start: reading
			// it and checking its configs are needed from the next start.
			require.Equal(t, tc.side+" mirror-mirror-offsets", tc.side+" "+tc.missing.Name, "copied without %s:\n%s", tc.missing, logs)
			out, err = runCLI(append([]string{"produce", "--count", "10", "--customers", "5", "--seed", "2"}, secured(src, aclAdmin)...)...)
			require.NoError(t, err, out)
			logs, err = mirrorFor(8 * time.Second)
			if err != nil {
				require.Contains(t, err.Error(), "TOPIC_AUTHORIZATION_FAILED", "restart without %s", tc.missing)
				return
			}
			// Reading the positions fails and is retried at each
			// assignment (the mirror logs it): nothing is copied.
			require.Contains(t, logs, "copied 0 records", "restart without %s", tc.missing)
			require.Error(t, verify(), "restart without %s", tc.missing)
		})
	}
}
