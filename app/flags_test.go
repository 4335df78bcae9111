package app

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestValueMessages: a bad value printed the flag package's text
// (`invalid value "abc" for flag -commit-interval: parse error`, `flag
// provided but not defined: -bogus`), a bad environment value hid the
// value and what was wanted, and a range check on an environment value
// named the variable without saying it is one. Every message names the
// flag (with two dashes) or the variable with its value, says what was
// wanted, and exits 2.
func TestValueMessages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	base := []string{"run", "--brokers", "b:1", "--state-dir", dir}
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"duration flag":   {nil, append(base, "--commit-interval", "abc"), `usage: --commit-interval: "abc" is not a duration (e.g. 100ms, 2s)`},
		"duration flag =": {nil, append(base, "--commit-interval=abc"), `usage: --commit-interval: "abc" is not a duration (e.g. 100ms, 2s)`},
		"duration env":    {map[string]string{"WC_COMMIT_INTERVAL": "abc"}, base, `usage: environment variable WC_COMMIT_INTERVAL="abc": not a duration (e.g. 100ms, 2s)`},
		"int flag":        {nil, append(base, "--max-records", "many"), `usage: --max-records: "many" is not an integer`},
		"int env":         {map[string]string{"WC_MAX_RECORDS": "many"}, base, `usage: environment variable WC_MAX_RECORDS="many": not an integer`},
		"int range":       {nil, append(base, "--max-records", "99999999999999999999"), `usage: --max-records: "99999999999999999999" is out of range`},
		"bool flag":       {nil, append(base, "--create-topics=maybe"), `usage: --create-topics: "maybe" is not a boolean (true or false)`},
		"bool env":        {map[string]string{"WC_CREATE_TOPICS": "maybe"}, base, `usage: environment variable WC_CREATE_TOPICS="maybe": not a boolean (true or false)`},
		"range env":       {map[string]string{"WC_MAX_RECORDS": "-1"}, base, "usage: environment variable WC_MAX_RECORDS=-1: want a positive count, got -1"},
		"range flag":      {nil, append(base, "--max-records", "-1"), "usage: --max-records: want a positive count, got -1"},
		"loops":           {nil, append(base, "--loops", "0"), "usage: --loops: want 1 to 64, got 0"},
		"state cache":     {nil, append(base, "--state-cache-mb", "-1"), "usage: --state-cache-mb: want 0 (off) to 1048576 MiB, got -1"},
		"block cache env": {map[string]string{"WC_BLOCK_CACHE_MB": "0"}, base, "usage: environment variable WC_BLOCK_CACHE_MB=0: want 1 to 1048576 MiB, got 0"},
		"range env quote": {map[string]string{"WC_ERROR_POLICY": "re try"}, base, `usage: environment variable WC_ERROR_POLICY="re try": `},
		"unknown flag":    {nil, []string{"run", "--bogus"}, "usage: unknown flag --bogus (see `wc run --help`)"},
		"unknown single":  {nil, []string{"topics", "check", "-bogus=1"}, "usage: unknown flag --bogus (see `wc topics check --help`)"},
		"no value":        {nil, []string{"run", "--brokers"}, "usage: --brokers needs a value"},
		"own command":     {map[string]string{"WC_WHO": ""}, []string{"greet"}, `usage: --who: want a name`},
		"log level env":   {map[string]string{"WC_LOG_LEVEL": "loud"}, base, `usage: environment variable WC_LOG_LEVEL=loud: want debug, info, warn or error, got "loud"`},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, _, err := runApp(testConfig(), tc.args...)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "parse error")
			require.NotContains(t, err.Error(), "flag provided")
			require.Equal(t, ExitUsage, ExitCode(err), err.Error())
		})
	}
}

// TestMetricsAddrIsAnAlias: --http-addr and its older name --metrics-addr
// were two flags on one variable, each filled from its own environment
// variable when not given, so WC_METRICS_ADDR beat `--http-addr` on the
// command line. The command line now wins for either name, and two
// different values for the one setting are a usage error.
func TestMetricsAddrIsAnAlias(t *testing.T) {
	for name, tc := range map[string]struct {
		env          map[string]string
		args         []string
		addr, origin string
		err          string
	}{
		"flag beats old env":     {env: map[string]string{"WC_METRICS_ADDR": ":19411"}, args: []string{"--http-addr", ":19410"}, addr: ":19410", origin: "--http-addr"},
		"old flag beats env":     {env: map[string]string{"WC_HTTP_ADDR": ":19411"}, args: []string{"--metrics-addr", ":19410"}, addr: ":19410", origin: "--metrics-addr"},
		"old env":                {env: map[string]string{"WC_METRICS_ADDR": ":19411"}, addr: ":19411", origin: "environment variable WC_METRICS_ADDR=:19411"},
		"env":                    {env: map[string]string{"WC_HTTP_ADDR": ":19411"}, addr: ":19411", origin: "environment variable WC_HTTP_ADDR=:19411"},
		"both flags agree":       {args: []string{"--http-addr", ":1", "--metrics-addr", ":1"}, addr: ":1", origin: "--http-addr"},
		"both flags disagree":    {args: []string{"--metrics-addr", ":2", "--http-addr", ":1"}, err: `--http-addr ":1" and --metrics-addr ":2" name one setting: give one`},
		"both envs disagree":     {env: map[string]string{"WC_HTTP_ADDR": ":1", "WC_METRICS_ADDR": ":2"}, err: "environment variables WC_HTTP_ADDR=:1 and WC_METRICS_ADDR=:2 name one setting: set one"},
		"neither":                {addr: "", origin: "--http-addr"},
		"both envs agree":        {env: map[string]string{"WC_HTTP_ADDR": ":1", "WC_METRICS_ADDR": ":1"}, addr: ":1", origin: "environment variable WC_HTTP_ADDR=:1"},
		"old flag beats new env": {env: map[string]string{"WC_HTTP_ADDR": ":5", "WC_METRICS_ADDR": ":6"}, args: []string{"--metrics-addr", ":7"}, addr: ":7", origin: "--metrics-addr"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			k, err := newKit(testConfig(), io.Discard)
			require.NoError(t, err)
			fs := newFlagSet("wc", "run", k.prefix)
			var c runConfig
			k.runFlags(fs, &c, false)
			err = fs.parse(tc.args)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.Equal(t, ExitUsage, ExitCode(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.addr, c.httpAddr)
			require.Equal(t, tc.origin, fs.origin("http-addr"))
		})
	}
}

// TestBadHTTPAddrNamesTheNameUsed: an address that cannot be listened on
// is a usage error naming --metrics-addr when that is the name given.
func TestBadHTTPAddrNamesTheNameUsed(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "lines"))
	require.NoError(t, err)
	defer cluster.Close()
	_, _, err = runApp(testConfig(), "run", "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--state-dir", t.TempDir(),
		"--metrics-addr", "127.0.0.1:notaport", "--log-level", "error")
	require.ErrorContains(t, err, "--metrics-addr: listen tcp")
	require.Equal(t, ExitUsage, ExitCode(err))
}

// TestStateCacheFlags: the cache flags reach the state's options, and
// --state-cache-mb 0 turns the value cache off rather than asking for
// state's default (its zero value).
func TestStateCacheFlags(t *testing.T) {
	for _, tc := range []struct {
		stateMB, blockMB int
		value, block     int64
	}{
		{16, 64, 16 << 20, 64 << 20},
		{0, 8, -1, 8 << 20},
	} {
		c := runConfig{stateCacheMB: tc.stateMB, blockCacheMB: tc.blockMB}
		o := c.stateOptions()
		require.Equal(t, tc.value, o.ValueCacheSize)
		require.Equal(t, tc.block, o.CacheSize)
	}
}
