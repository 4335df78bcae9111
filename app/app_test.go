package app

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/wordcount"
	"github.com/exactly-stream/exactly/processor"
)

// testConfig is a one-service program named wc plus one command of its own.
func testConfig() Config {
	return Config{
		Name:     "wc",
		Summary:  "count words",
		Topology: wordcount.Topology,
		Group:    wordcount.Group,
		Commands: []Command{{
			Name: "greet", Summary: "say hello", Description: "Greet someone by name.",
			Setup: func(fs *flag.FlagSet) Runner {
				who := fs.String("who", "world", "whom to greet")
				return func(_ context.Context, stdout io.Writer) error {
					if *who == "" {
						return Usagef("--who: want a name")
					}
					_, err := io.WriteString(stdout, "hello "+*who+"\n")
					return err
				}
			},
		}},
	}
}

// runApp runs c with args and returns its stdout, its stderr and its error.
func runApp(c Config, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := c.Run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestHelpListsCommandsAndExitsZero(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"help", "--help", "-h"} {
		t.Run(arg, func(t *testing.T) {
			out, _, err := runApp(testConfig(), arg)
			require.NoError(t, err)
			require.Equal(t, 0, ExitCode(err))
			for _, s := range []string{"usage: wc <command> [flags]", "  run ", "  reset ", "  topics ", "  doctor ", "  greet ", "say hello",
				"WC_<FLAG>", "WC_COMMIT_INTERVAL", "exit status:", "2  usage or configuration error", "3  a check found problems"} {
				require.Contains(t, out, s)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, _, err := runApp(testConfig(), "--version")
	require.NoError(t, err)
	require.Regexp(t, `^wc \S+`, out)
	c := testConfig()
	c.Version = "v1.2.3"
	out, _, err = runApp(c, "--version")
	require.NoError(t, err)
	require.Equal(t, "wc v1.2.3\n", out)
}

func TestCommandHelp(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"run": {[]string{"run", "--help"}, []string{"usage: wc run [flags]", "Run one instance of the wc service",
			"--commit-interval duration  (env WC_COMMIT_INTERVAL)", "(default 100ms)", "(default: the host name)",
			"(default: wordcount, after any --topic-prefix)", "--brokers string  (env WC_BROKERS)"}},
		"run -h":       {[]string{"run", "-h"}, []string{"usage: wc run [flags]"}},
		"help run":     {[]string{"help", "reset"}, []string{"usage: wc reset [flags]", "committed offsets"}},
		"topics":       {[]string{"topics", "--help"}, []string{"usage: wc topics create|check [flags]", "--partitions int  (env WC_PARTITIONS)"}},
		"topics check": {[]string{"topics", "check", "--help"}, []string{"usage: wc topics create|check [flags]"}},
		"doctor":       {[]string{"doctor", "--help"}, []string{"usage: wc doctor [flags]", "--txn-threshold duration  (env WC_TXN_THRESHOLD)"}},
		"own command":  {[]string{"greet", "--help"}, []string{"usage: wc greet [flags]", "Greet someone by name.", "--who string  (env WC_WHO)", "(default world)"}},
		"help own":     {[]string{"help", "greet"}, []string{"Greet someone by name."}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, _, err := runApp(testConfig(), tc.args...)
			require.NoError(t, err)
			for _, s := range tc.want {
				require.Contains(t, out, s)
			}
			if host != "" {
				require.NotContains(t, out, "(default "+host+")", "a per-run value shown as the default")
			}
		})
	}
}

// TestBadValuesNameTheirOrigin: every usage or configuration error exits 2
// and names the flag, or the environment variable, the bad value came from.
func TestBadValuesNameTheirOrigin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	base := []string{"run", "--brokers", "b:1", "--state-dir", dir}
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"negative interval flag":  {nil, append(base, "--commit-interval", "-5s"), "--commit-interval"},
		"negative interval env":   {map[string]string{"WC_COMMIT_INTERVAL": "-1s"}, base, "WC_COMMIT_INTERVAL"},
		"unparsable env":          {map[string]string{"WC_COMMIT_INTERVAL": "soon"}, base, "WC_COMMIT_INTERVAL"},
		"zero max records env":    {map[string]string{"WC_MAX_RECORDS": "0"}, base, "WC_MAX_RECORDS"},
		"txn timeout below":       {nil, append(base, "--transaction-timeout", "10ms"), "--transaction-timeout"},
		"short session":           {nil, append(base, "--session-timeout", "1ms"), "--session-timeout"},
		"bad replication":         {nil, append(base, "--replication-factor", "0"), "--replication-factor"},
		"bad policy env":          {map[string]string{"WC_ERROR_POLICY": "retry"}, base, "WC_ERROR_POLICY"},
		"bad log level":           {nil, append(base, "--log-level", "loud"), "--log-level"},
		"bad log format env":      {map[string]string{"WC_LOG_FORMAT": "xml"}, base, "WC_LOG_FORMAT"},
		"no brokers":              {nil, []string{"run", "--state-dir", dir}, "--brokers (or WC_BROKERS) is required"},
		"no state dir":            {nil, []string{"run", "--brokers", "b:1"}, "--state-dir (or WC_STATE_DIR) is required"},
		"unknown flag":            {nil, []string{"doctor", "--nope"}, "nope"},
		"stray argument":          {nil, []string{"doctor", "--brokers", "b:1", "now"}, "now"},
		"unknown command":         {nil, []string{"launch"}, `unknown command "launch"`},
		"no command":              {nil, nil, "no command given"},
		"topics without sub":      {nil, []string{"topics"}, "topics create|check"},
		"topics unknown sub":      {nil, []string{"topics", "bogus"}, `unknown topics command "bogus": want create or check`},
		"doctor threshold env":    {map[string]string{"WC_TXN_THRESHOLD": "0s"}, []string{"doctor", "--brokers", "b:1"}, "WC_TXN_THRESHOLD"},
		"topics partitions":       {nil, []string{"topics", "create", "--brokers", "b:1", "--partitions", "0"}, "--partitions"},
		"own command usage error": {nil, []string{"greet", "--who", ""}, "--who"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, _, err := runApp(testConfig(), tc.args...)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, ExitUsage, ExitCode(err), err.Error())
			require.NoDirExists(t, dir)
		})
	}
}

func TestEnvironmentFillsUnsetFlags(t *testing.T) {
	t.Setenv("WC_WHO", "env")
	out, _, err := runApp(testConfig(), "greet")
	require.NoError(t, err)
	require.Equal(t, "hello env\n", out)
	out, _, err = runApp(testConfig(), "greet", "--who", "flag")
	require.NoError(t, err)
	require.Equal(t, "hello flag\n", out, "a flag on the command line wins")
}

// TestUnreachableBroker: run against a port nobody listens on used to
// create the state directory and then fail with "invalid configuration";
// it must say that no broker is reachable, within the connect timeout, and
// leave nothing behind.
func TestUnreachableBroker(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	begin := time.Now()
	_, _, err := runApp(testConfig(), "run", "--brokers", "127.0.0.1:1", "--state-dir", dir, "--connect-timeout", "500ms", "--log-level", "error")
	require.Error(t, err)
	require.Contains(t, err.Error(), "no broker reachable at 127.0.0.1:1")
	require.NotContains(t, err.Error(), "invalid configuration")
	require.Equal(t, ExitFailure, ExitCode(err))
	require.Less(t, time.Since(begin), 10*time.Second)
	require.NoDirExists(t, dir)
}

func TestSeveralServices(t *testing.T) {
	t.Parallel()
	c := Config{Name: "two", Services: []Service{
		{Name: "a", Topology: wordcount.Topology, Group: "group-a"},
		{Name: "b", Topology: wordcount.Topology},
	}}
	out, _, err := runApp(c, "run", "--help")
	require.NoError(t, err)
	require.Contains(t, out, "which service to run: a or b (default a)")
	require.Contains(t, out, "(default: group-a for a, b for b; after any --topic-prefix)")
	out, _, err = runApp(c, "doctor", "--help")
	require.NoError(t, err)
	require.Contains(t, out, "--a-group string  (env TWO_A_GROUP)")
	_, _, err = runApp(c, "run", "--service", "c", "--brokers", "b:1", "--state-dir", t.TempDir())
	require.ErrorContains(t, err, `--service: want a or b, got "c"`)
	require.Equal(t, ExitUsage, ExitCode(err))
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]Config{
		"no name":        {Topology: wordcount.Topology},
		"no topology":    {Name: "x"},
		"duplicate name": {Name: "x", Services: []Service{{Name: "a", Topology: wordcount.Topology}, {Name: "a", Topology: wordcount.Topology}}},
		"no setup":       {Name: "x", Topology: wordcount.Topology, Commands: []Command{{Name: "c"}}},
	} {
		_, _, err := runApp(c, "help")
		require.Error(t, err, name)
		require.Equal(t, ExitFailure, ExitCode(err), name)
	}
}

func TestEnvPrefix(t *testing.T) {
	t.Parallel()
	require.Equal(t, "EXACTLY_", envPrefix("exactly"))
	require.Equal(t, "WORD_COUNT2_", envPrefix("word-count2"))
}

func TestWrap(t *testing.T) {
	t.Parallel()
	require.Equal(t, "aa bb\ncc", wrap("aa bb  cc", 5))
	require.Equal(t, "toolongword\nx", wrap("toolongword x", 5))
}

// TestOptionsReachTheProcessor: Config.Options and a service's Options are
// applied after the flags' settings; an option the processor refuses
// fails the run as a configuration error, before anything is created.
func TestOptionsReachTheProcessor(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]Config{
		"config": func() Config {
			c := testConfig()
			c.Options = []processor.Opt{processor.MaxRecordsPerTxn(-1)}
			return c
		}(),
		"service": func() Config {
			c := testConfig()
			c.Services = []Service{{Name: "wc", Topology: wordcount.Topology, Options: []processor.Opt{
				processor.MaxRecordsPerTxn(-1),
			}}}
			return c
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			_, _, err := runApp(c, "run", "--brokers", "127.0.0.1:1", "--state-dir", dir, "--connect-timeout", "1s")
			require.ErrorContains(t, err, "max records")
			require.Equal(t, ExitUsage, ExitCode(err))
			require.NoDirExists(t, dir)
		})
	}
}
