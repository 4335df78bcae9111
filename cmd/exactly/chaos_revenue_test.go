package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestChaosRevenueUsage: the revenue soak runs another program than this
// one, so it needs --instance-binary, and it has no broker kills.
func TestChaosRevenueUsage(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no instance binary": {[]string{"chaos", "--mode", "revenue"}, "--instance-binary: --mode revenue runs the revenue example's command"},
		"broker kills":       {[]string{"chaos", "--mode", "revenue", "--instance-binary", "main.go", "--kafka-dir", "/tmp/k"}, "--kafka-dir: broker kills are for --mode pipeline only"},
		"unknown mode":       {[]string{"chaos", "--mode", "revenues"}, "--mode: want pipeline, mirror, revenue or enrich"},
		"enrich, no binary":  {[]string{"chaos", "--mode", "enrich"}, "--instance-binary: --mode enrich runs the enrich example's command"},
		"task idle":          {[]string{"chaos", "--mode", "revenue", "--instance-binary", "main.go", "--task-idle", "1s"}, "--task-idle: only with --mode enrich"},
		"enrich, kills":      {[]string{"chaos", "--mode", "enrich", "--instance-binary", "main.go", "--kafka-dir", "/tmp/k"}, "--kafka-dir: broker kills are for --mode pipeline only"},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := runCLI(tc.args...)
			require.Error(t, err, out)
			require.Equal(t, 2, exitCode(err))
			require.ErrorContains(t, err, tc.want)
		})
	}
}
