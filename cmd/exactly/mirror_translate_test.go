package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// translateCmd runs `translate` as the program would once the lead wires
// it as `exactly mirror translate` (the kit parses flags and environment).
func translateCmd(ctx context.Context, args []string, stdout io.Writer) error {
	c := config()
	c.Commands = append(c.Commands[:len(c.Commands):len(c.Commands)], mirrorTranslateCommand)
	return c.Run(ctx, append([]string{"translate"}, args...), stdout, io.Discard)
}

func TestMirrorTranslateUsage(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no source":           {[]string{"--target-brokers", "b:1", "--group", "g"}, "--source-brokers"},
		"no target":           {[]string{"--source-brokers", "a:1", "--group", "g"}, "--target-brokers"},
		"no group":            {[]string{"--source-brokers", "a:1", "--target-brokers", "b:1"}, "--group"},
		"empty group list":    {[]string{"--source-brokers", "a:1", "--target-brokers", "b:1", "--group", " , "}, "--group"},
		"force alone":         {[]string{"--source-brokers", "a:1", "--target-brokers", "b:1", "--group", "g", "--force"}, "--force"},
		"bad read timeout":    {[]string{"--source-brokers", "a:1", "--target-brokers", "b:1", "--group", "g", "--read-timeout", "0s"}, "--read-timeout"},
		"bad connect timeout": {[]string{"--source-brokers", "a:1", "--target-brokers", "b:1", "--group", "g", "--connect-timeout", "0s"}, "--connect-timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			err := translateCmd(context.Background(), tc.args, &bytes.Buffer{})
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, 2, exitCode(err))
		})
	}
}

func TestListFlag(t *testing.T) {
	var l listFlag
	require.NoError(t, l.Set("a, b,,"))
	require.NoError(t, l.Set("c"))
	require.Equal(t, listFlag{"a", "b", "c"}, l)
	require.Equal(t, "a,b,c", l.String())
}
