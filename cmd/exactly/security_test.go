package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/kafkaauth/kafkaauthtest"
)

// TestSecuredPipeline: on a kfake cluster with SASL and TLS on (mTLS for
// SCRAM-SHA-512), topics create, produce, run (an order-service instance)
// and verify reach it through their flags or environment variables only,
// and the pipeline is exactly once. The password shows in no output, log
// or error.
func TestSecuredPipeline(t *testing.T) { // not parallel: it sets the environment
	for _, tc := range []struct {
		mechanism string
		mTLS      bool
	}{{"PLAIN", false}, {"SCRAM-SHA-256", false}, {"SCRAM-SHA-512", true}} {
		t.Run(tc.mechanism, func(t *testing.T) {
			c := kafkaauthtest.Start(t, 1, tc.mTLS)
			flags := []string{"--brokers", c.Brokers, "--tls-ca-file", c.Certs.CAFile, "--sasl-mechanism", tc.mechanism,
				"--sasl-username", kafkaauthtest.Users[tc.mechanism]}
			if tc.mTLS {
				flags = append(flags, "--tls-cert-file", c.Certs.ClientCertFile, "--tls-key-file", c.Certs.ClientKeyFile)
			}
			// The password only ever comes from the environment; produce
			// takes every setting from there.
			t.Setenv("EXACTLY_SASL_PASSWORD", kafkaauthtest.Password)
			out, err := runCLI(append([]string{"topics", "create", "--partitions", "2"}, flags...)...)
			require.NoError(t, err, out)
			withEnv(t, flags, func() {
				out, err = runCLI("produce", "--count", "300", "--customers", "20", "--seed", "7")
			})
			require.NoError(t, err, out)
			require.Contains(t, out, "produced 300 records")

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var logs syncBuffer
			done := make(chan error, 1)
			go func() { // ended by cancel below
				done <- config().Run(ctx, append([]string{"run", "--service", "order", "--state-dir", t.TempDir(), "--instance-id", "sec-1",
					"--log-level", "debug", "--http-addr", "127.0.0.1:0"}, flags...), &logs, &logs)
			}()
			var verified string
			require.Eventually(t, func() bool {
				verified, err = runCLI(append([]string{"verify", "--payments=false", "--stable-wait", "1s"}, flags...)...)
				return err == nil
			}, 60*time.Second, 200*time.Millisecond, "verify never passed: %v\n%s\nlogs:\n%s", err, verified, logs.String())
			require.Contains(t, verified, "OK")
			cancel()
			require.NoError(t, <-done, logs.String())
			require.Contains(t, logs.String(), "starting")
			require.NotContains(t, logs.String()+out+verified, kafkaauthtest.Password)
		})
	}
}

// withEnv sets flags (pairs of --name value) as EXACTLY_ environment
// variables while fn runs.
func withEnv(t *testing.T, flags []string, fn func()) {
	t.Helper()
	var names []string
	for i := 0; i+1 < len(flags); i += 2 {
		name := "EXACTLY_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(flags[i], "--"), "-", "_"))
		require.NoError(t, os.Setenv(name, flags[i+1]))
		names = append(names, name)
	}
	defer func() {
		for _, n := range names {
			_ = os.Unsetenv(n)
		}
	}()
	fn()
}

// TestWrongPasswordFailsFast: a wrong password ends produce, verify and
// run within seconds (not --connect-timeout) with an error naming the
// mechanism and the broker, exit status 1, and no password anywhere.
func TestWrongPasswordFailsFast(t *testing.T) { // not parallel: it sets the environment
	c := kafkaauthtest.Start(t, 1, false)
	const wrong = "wrong-Pa55word-never-printed"
	t.Setenv("EXACTLY_SASL_PASSWORD", wrong)
	flags := []string{"--brokers", c.Brokers, "--tls-ca-file", c.Certs.CAFile, "--sasl-mechanism", "SCRAM-SHA-512",
		"--sasl-username", kafkaauthtest.Scram512, "--connect-timeout", "1m"}
	for name, args := range map[string][]string{
		"produce": {"produce", "--count", "10"},
		"verify":  {"verify"},
		"run":     {"run", "--state-dir", t.TempDir()},
		"topics":  {"topics", "check"},
		"doctor":  {"doctor"},
	} {
		t.Run(name, func(t *testing.T) {
			flags := flags
			if name == "topics" || name == "doctor" {
				flags = flags[:len(flags)-2] // they have no --connect-timeout
			}
			var logs syncBuffer
			begin := time.Now()
			err := config().Run(context.Background(), append(args, flags...), &logs, &logs)
			require.Error(t, err)
			require.Less(t, time.Since(begin), 5*time.Second, "it waited instead of failing: %v", err)
			require.Equal(t, app.ExitFailure, app.ExitCode(err), err.Error())
			require.Contains(t, err.Error(), "authentication failed at "+c.Brokers+" with SASL SCRAM-SHA-512 as user "+kafkaauthtest.Scram512+" over TLS")
			require.NotContains(t, err.Error()+logs.String(), wrong)
		})
	}
}

// TestSecurityFlagsInHelpAndErrors: every connecting command lists the
// flags with their environment variables, and neither help nor a usage
// error shows a password, even one set in the environment.
func TestSecurityFlagsInHelpAndErrors(t *testing.T) { // not parallel: it sets the environment
	const pw = "env-Pa55word-never-printed"
	t.Setenv("EXACTLY_SASL_PASSWORD", pw)
	for _, cmd := range [][]string{{"run"}, {"reset"}, {"topics", "check"}, {"doctor"}, {"produce"}, {"verify"}, {"mirror"}, {"mirror-verify"}} {
		out, err := runCLI(append(cmd, "--help")...)
		require.NoError(t, err)
		require.NotContains(t, out, pw)
		if strings.HasPrefix(cmd[0], "mirror") {
			require.Contains(t, out, "--source-sasl-mechanism string  (env EXACTLY_SOURCE_SASL_MECHANISM)", cmd)
			require.Contains(t, out, "--target-tls-ca-file string  (env EXACTLY_TARGET_TLS_CA_FILE)", cmd)
			continue
		}
		require.Contains(t, out, "--sasl-password value  (env EXACTLY_SASL_PASSWORD)", cmd)
		require.Contains(t, out, "--tls-ca-file string  (env EXACTLY_TLS_CA_FILE)", cmd)
	}

	// The password is set but no mechanism: the error names the variable,
	// not its value.
	_, err := runCLI("verify", "--brokers", "b:1")
	require.Equal(t, app.ExitUsage, app.ExitCode(err), err)
	require.Contains(t, err.Error(), "environment variable EXACTLY_SASL_PASSWORD: is set but --sasl-mechanism is not")
	require.NotContains(t, err.Error(), pw)

	t.Setenv("EXACTLY_SASL_MECHANISM", "GSSAPI")
	for _, cmd := range [][]string{{"run", "--state-dir", "x"}, {"produce"}, {"topics", "check"}, {"doctor"}} {
		_, err = runCLI(append(cmd, "--brokers", "b:1")...)
		require.True(t, errors.Is(err, app.ErrUsage), "%v", err)
		require.Contains(t, err.Error(), `environment variable EXACTLY_SASL_MECHANISM=GSSAPI: unknown SASL mechanism "GSSAPI"`)
	}
	_, err = runCLI("mirror", "--source-brokers", "a:1", "--target-brokers", "b:1", "--topics", "t", "--target-sasl-mechanism", "SCRAM-SHA-512")
	require.Equal(t, app.ExitUsage, app.ExitCode(err), err)
	require.Contains(t, err.Error(), "--target-sasl-username: is required with SASL mechanism SCRAM-SHA-512")
}
