package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/kafkaauth/kafkaauthtest"
)

// TestSecuredMirrorFromEnvironment: `exactly mirror` and `exactly mirror
// verify` copy and compare between two clusters that each take only their
// own SCRAM user over TLS, with every connection setting in the
// environment that kafkaauth.Config.Environ builds (what `exactly chaos`
// gives its mirror instances) and none on the command line. The copy is
// exact, and no password shows in any output.
func TestSecuredMirrorFromEnvironment(t *testing.T) {
	t.Parallel()
	const srcPass, tgtPass = "source-Pa55word-never-printed", "target-Pa55word-never-printed"
	src := kafkaauthtest.Start(t, 1, false, kfake.Superuser(kafkaauth.ScramSHA512, "mirror-source", srcPass))
	tgt := kafkaauthtest.Start(t, 1, true, kfake.Superuser(kafkaauth.ScramSHA512, "mirror-target", tgtPass))
	srcSec := kafkaauth.Config{TLS: kafkaauth.TLS{CAFile: src.Certs.CAFile},
		SASL: kafkaauth.SASL{Mechanism: kafkaauth.ScramSHA512, Username: "mirror-source", Password: srcPass}}
	tgtSec := kafkaauth.Config{TLS: kafkaauth.TLS{CAFile: tgt.Certs.CAFile, CertFile: tgt.Certs.ClientCertFile, KeyFile: tgt.Certs.ClientKeyFile},
		SASL: kafkaauth.SASL{Mechanism: kafkaauth.ScramSHA512, Username: "mirror-target", Password: tgtPass}}
	env := tgtSec.Environ(srcSec.Environ(nil, "EXACTLY_", "source-"), "EXACTLY_", "target-")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts, err := srcSec.Opts()
	require.NoError(t, err)
	p, err := kgo.NewClient(append(opts, kgo.SeedBrokers(src.Brokers), kgo.DefaultProduceTopic("events"))...)
	require.NoError(t, err)
	defer p.Close()
	resp, err := kadm.NewClient(p).CreateTopic(ctx, 2, -1, nil, "events")
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	for i := range 50 {
		require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Key: []byte{byte(i)}, Value: []byte("v")}).FirstErr())
	}

	brokers := []string{"--source-brokers", src.Brokers, "--target-brokers", tgt.Brokers, "--topics", "events"}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), mainArgsEnv+"="+strings.Join(append([]string{"mirror", "--instance-id", "sec-1"}, brokers...), "\n")), env...)
	var mirrorOut syncBuffer
	cmd.Stdout, cmd.Stderr = &mirrorOut, &mirrorOut
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // ends when the process does: SIGTERM below, or a failure
	defer func() { _ = cmd.Process.Kill() }()

	var out, errOut string
	var code int
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, errOut, code = exactly(t, env, append([]string{"mirror", "verify", "--whole"}, brokers...)...)
		if code == 0 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the mirror exited: %v\n%s", err, mirrorOut.String())
		default:
		}
		require.False(t, time.Now().After(deadline), "never mirrored (exit %d): %s%s\nmirror:\n%s", code, out, errOut, mirrorOut.String())
		time.Sleep(200 * time.Millisecond)
	}
	require.Contains(t, out, "0 differences")
	require.Contains(t, out, "events/0 -> events/0")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, mirrorOut.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the mirror did not stop on SIGTERM:\n%s", mirrorOut.String())
	}
	require.Contains(t, mirrorOut.String(), "copied 50 records")
	for _, s := range []string{out, errOut, mirrorOut.String(), strings.Join(cmd.Args, " ")} {
		require.NotContains(t, s, srcPass)
		require.NotContains(t, s, tgtPass)
	}

	// The users are per cluster: swapped, the source refuses at once.
	swapped := tgtSec
	swapped.TLS = srcSec.TLS
	_, errOut, code = exactly(t, swapped.Environ(env, "EXACTLY_", "source-"), append([]string{"mirror", "verify", "--whole"}, brokers...)...)
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "authentication failed at "+src.Brokers+" with SASL SCRAM-SHA-512 as user mirror-target over TLS")
	require.NotContains(t, errOut, tgtPass)
}

// TestSecurityFlagsNeedRealClusters: bench and chaos run embedded kfake
// clusters without --brokers, which are plain: security flags without the
// brokers they are for are a usage error naming the flag, without the
// password.
func TestSecurityFlagsNeedRealClusters(t *testing.T) {
	t.Parallel()
	const pass = "Pa55word-never-printed"
	sasl := []string{"--sasl-mechanism", "PLAIN", "--sasl-username", "u", "--sasl-password", pass}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"chaos", append([]string{"chaos"}, sasl...), "--brokers: is required with --tls or --sasl-* (SASL PLAIN as user u without TLS)"},
		{"chaos target", []string{"chaos", "--mode", "mirror", "--target-tls"}, "--target-brokers: is required with --target-tls or --target-sasl-* (TLS)"},
		{"chaos bad flag", []string{"chaos", "--target-sasl-mechanism", "GSSAPI"}, "--target-sasl-mechanism: unknown SASL mechanism"},
		{"bench", append([]string{"bench"}, sasl...), "--brokers: is required with connection security (SASL PLAIN as user u without TLS)"},
		{"bench target", []string{"bench", "--suite", "mirror", "--brokers", "127.0.0.1:1", "--target-tls"}, "--target-brokers: is required with target connection security (TLS)"},
		{"bench bad flag", append([]string{"bench", "--brokers", "127.0.0.1:1", "--sasl-mechanism", "PLAIN"}, "--sasl-username", "u"), "--sasl-password: (or --sasl-password-file) is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(tc.args...)
			require.Error(t, err, out)
			require.Equal(t, 2, exitCode(err), "%v", err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error()+out, pass)
		})
	}
}
