package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/app"
)

// dispatch runs the exactly program with args as the binary would.
func dispatch(ctx context.Context, args []string, stdout io.Writer) error {
	return config().Run(ctx, args, stdout, io.Discard)
}

var exitCode = app.ExitCode

func TestBadInputNamesTheFlagOrVariable(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"bad env value":      {map[string]string{"EXACTLY_COMMIT_INTERVAL": "soon"}, []string{"run"}, "EXACTLY_COMMIT_INTERVAL"},
		"no brokers":         {nil, []string{"run", "--state-dir", "x"}, "--brokers"},
		"no state dir":       {nil, []string{"run", "--brokers", "b:1"}, "--state-dir"},
		"bad service":        {nil, []string{"run", "--brokers", "b:1", "--state-dir", "x", "--service", "billing"}, "--service"},
		"bad log level":      {nil, []string{"run", "--log-level", "loud"}, "--log-level"},
		"bad share":          {nil, []string{"produce", "--brokers", "b:1", "--malformed", "2"}, "MalformedShare"},
		"unknown flag":       {nil, []string{"verify", "--nope"}, "nope"},
		"unknown command":    {nil, []string{"launch"}, "launch"},
		"stray argument":     {nil, []string{"verify", "extra"}, "extra"},
		"short session":      {nil, []string{"run", "--brokers", "b:1", "--state-dir", "x", "--session-timeout", "1ms"}, "--session-timeout"},
		"bad replication":    {nil, []string{"run", "--brokers", "b:1", "--state-dir", "x", "--replication-factor", "0"}, "--replication-factor"},
		"bad txn timeout":    {nil, []string{"run", "--brokers", "b:1", "--state-dir", "x", "--transaction-timeout", "10ms"}, "transaction timeout"},
		"bad demo partition": {nil, []string{"demo", "--partitions", "0"}, "--partitions"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := dispatch(context.Background(), tc.args, &bytes.Buffer{})
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotEqual(t, 0, exitCode(err))
		})
	}
}

func TestExitCodes(t *testing.T) {
	require.Equal(t, 3, exitCode(app.ErrViolations))
	require.Equal(t, 2, exitCode(errors.Join(app.ErrUsage)))
	require.Equal(t, 0, exitCode(flag.ErrHelp))
	require.Equal(t, 1, exitCode(errors.New("boom")))
}

func TestDemoSmall(t *testing.T) {
	var out bytes.Buffer
	err := dispatch(context.Background(), []string{"demo", "--count", "3000", "--customers", "40", "--partitions", "3"}, &out)
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "PASS: exactly once")
	require.True(t, strings.Contains(out.String(), "verify: OK"), out.String())
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
