package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// The test binary doubles as the exactly binary: with mainArgsEnv set it
// runs main with those arguments (separated by newlines), so that the
// tests see real exit statuses.
const mainArgsEnv = "TEST_EXACTLY_MAIN_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(mainArgsEnv); ok {
		os.Args = []string{"exactly"}
		if args != "" {
			os.Args = append(os.Args, strings.Split(args, "\n")...)
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// exactly runs the binary with args and env and returns its stdout, its
// stderr and its exit status.
func exactly(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), mainArgsEnv+"="+strings.Join(args, "\n")), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); !ok {
		require.NoError(t, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func TestHelpAndVersionExitZero(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h", "help"} {
		out, _, code := exactly(t, nil, arg)
		require.Equal(t, 0, code, arg)
		for _, s := range []string{"usage: exactly <command> [flags]", "  run ", "  reset ", "  topics ", "  doctor ",
			"  produce ", "  verify ", "  demo ", "  bench ", "  chaos ", "  mirror ", "mirror verify|doctor", "EXACTLY_<FLAG>", "exit status:",
			"1  runtime failure", "2  usage or configuration error", "3  a check found problems"} {
			require.Contains(t, out, s, arg)
		}
		require.NotContains(t, out, "mirror-verify", "the old name is not listed")
	}
	out, _, code := exactly(t, nil, "--version")
	require.Equal(t, 0, code)
	require.Regexp(t, `^exactly \S+`, out)
}

func TestCommandHelpExitsZero(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	for name, tc := range map[string]struct {
		args []string
		want []string
		not  []string
	}{
		"topics": {[]string{"topics", "--help"}, []string{"usage: exactly topics create|check [flags]",
			"--order-group string  (env EXACTLY_ORDER_GROUP)", "(default: <prefix>exactly-orders)"}, nil},
		"run": {[]string{"run", "--help"}, []string{"usage: exactly run [flags]", "Run one instance of a service (order or payment",
			"(default: exactly-orders for order, exactly-payments for payment; after any --topic-prefix)",
			"--service string  (env EXACTLY_SERVICE)", "(default: the host name)"}, []string{"orders-svc", "(default " + host + ")"}},
		"produce": {[]string{"produce", "-h"}, []string{"usage: exactly produce [flags]", "--seed int  (env EXACTLY_SEED)",
			"(default: a random seed)"}, nil},
		"bench": {[]string{"help", "bench"}, []string{"(default: bench-<unix time>-)"}, []string{"(default bench-"}},
		"chaos": {[]string{"chaos", "--help"}, []string{"usage: exactly chaos [flags]", "--duration duration  (env EXACTLY_DURATION)"}, nil},
		"mirror": {[]string{"mirror", "--help"}, []string{"usage: exactly mirror [flags]\n       exactly mirror <command> [flags]",
			"commands:\n  verify     compare", "\n  doctor     check", "\n  translate  translate", "--instance-id string  (env EXACTLY_INSTANCE_ID)"}, []string{"mirror-verify"}},
		"mirror verify": {[]string{"mirror", "verify", "--help"}, []string{"usage: exactly mirror verify [flags]",
			"--whole  (env EXACTLY_WHOLE)", "--source-brokers string  (env EXACTLY_SOURCE_BROKERS)"}, []string{"--instance-id", "commands:"}},
		"mirror doctor": {[]string{"help", "mirror", "doctor"}, []string{"usage: exactly mirror doctor [flags]", "4 on warnings and 5 when something is critical",
			"--sample duration  (env EXACTLY_SAMPLE)", "(default 10s)", "--max-lag int  (env EXACTLY_MAX_LAG)", "--txn-threshold duration"}, []string{"--instance-id"}},
		"mirror-verify": {[]string{"mirror-verify", "-h"}, []string{"usage: exactly mirror-verify [flags]", "old name of `exactly mirror verify`"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, _, code := exactly(t, nil, tc.args...)
			require.Equal(t, 0, code, out)
			for _, s := range tc.want {
				require.Contains(t, out, s)
			}
			for _, s := range tc.not {
				require.NotContains(t, out, s)
			}
			require.NotRegexp(t, `random seed\) \(default \d`, out)
		})
	}
}

func TestExitStatusesOfTheBinary(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  []string
		args []string
		code int
		want string
	}{
		"unknown command":  {nil, []string{"launch"}, 2, `unknown command "launch"`},
		"no command":       {nil, nil, 2, "no command given"},
		"bad flag value":   {nil, []string{"run", "--brokers", "b:1", "--state-dir", "x", "--commit-interval", "-5s"}, 2, "--commit-interval"},
		"bad env value":    {[]string{"EXACTLY_COMMIT_INTERVAL=-1s"}, []string{"run", "--brokers", "b:1", "--state-dir", "x"}, 2, "EXACTLY_COMMIT_INTERVAL"},
		"missing required": {nil, []string{"verify"}, 2, "--brokers (or EXACTLY_BROKERS) is required"},
		"unreachable":      {nil, []string{"produce", "--brokers", "127.0.0.1:1", "--connect-timeout", "300ms"}, 1, "no broker reachable at 127.0.0.1:1"},
		"mirror unreachable": {nil, []string{"mirror", "--source-brokers", "127.0.0.1:1", "--target-brokers", "127.0.0.1:2", "--topics", "t", "--connect-timeout", "300ms"},
			1, "source cluster: no broker reachable at 127.0.0.1:1"},
		"topics no sub env":  {[]string{"EXACTLY_BROKERS=b:1"}, []string{"topics"}, 2, "topics create|check"},
		"mirror unknown sub": {nil, []string{"mirror", "check"}, 2, `unknown mirror command "check": want verify, doctor or translate`},
		"mirror doctor bad env": {[]string{"EXACTLY_SAMPLE=-1s"}, []string{"mirror", "doctor", "--source-brokers", "a:1", "--target-brokers", "b:1", "--topics", "t"},
			2, "--sample (or EXACTLY_SAMPLE)"},
		"mirror doctor unreachable": {nil, []string{"mirror", "doctor", "--source-brokers", "127.0.0.1:1", "--target-brokers", "127.0.0.1:2", "--topics", "t", "--connect-timeout", "300ms"},
			1, "source: no broker reachable at 127.0.0.1:1"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := exactly(t, tc.env, tc.args...)
			require.Equal(t, tc.code, code, stderr)
			require.Contains(t, stderr, tc.want)
		})
	}
}

// TestProduceUnreachableIsBounded: produce against a broker that is not
// there used to retry for ever; it must give up within --connect-timeout.
func TestProduceUnreachableIsBounded(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	_, err := runCLI("produce", "--brokers", "127.0.0.1:1", "--connect-timeout", "500ms", "--count", "10")
	require.ErrorContains(t, err, "no broker reachable at 127.0.0.1:1 within 500ms (--connect-timeout)")
	require.Equal(t, 1, exitCode(err))
	require.Less(t, time.Since(begin), 10*time.Second)
}

// TestRunUnreachableCreatesNothing: run used to create its state directory
// and then report "invalid configuration" when no broker answered.
func TestRunUnreachableCreatesNothing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	_, stderr, code := exactly(t, []string{"EXACTLY_CONNECT_TIMEOUT=500ms"}, "run", "--brokers", "127.0.0.1:1", "--state-dir", dir)
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "no broker reachable at 127.0.0.1:1 within 500ms (environment variable EXACTLY_CONNECT_TIMEOUT=500ms)")
	require.NotContains(t, stderr, "invalid configuration")
	require.NoDirExists(t, dir)
}

// TestFirstSignalStopsCleanly: SIGTERM ends the open transaction, leaves
// the group and exits 0.
func TestFirstSignalStopsCleanly(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "sig-orders"))
	require.NoError(t, err)
	defer c.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+strings.Join([]string{"run", "--brokers", strings.Join(c.ListenAddrs(), ","),
		"--state-dir", t.TempDir(), "--topic-prefix", "sig-", "--instance-id", "i1", "--session-timeout", "6s"}, "\n"))
	var errOut syncBuffer
	cmd.Stderr = &errOut
	require.NoError(t, cmd.Start())
	pollUntil(t, 30*time.Second, "the instance started", func() bool { return strings.Contains(errOut.String(), "msg=starting") })
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err = cmd.Wait()
	require.NoError(t, err, errOut.String())
	require.Contains(t, errOut.String(), "shutting down cleanly; send it again to exit at once")
	require.Contains(t, errOut.String(), "msg=stopped")
}
