package processor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWithHooksAppends: WithHooks given twice must run both sets of hooks,
// in order, as kgo's options compose. Before, the second WithHooks replaced
// the first, so an application adding its own hooks silently dropped the
// metrics hooks given before them (or the other way round).
func TestWithHooksAppends(t *testing.T) {
	t.Parallel()
	var calls []string
	rec := func(name string) Hooks {
		return Hooks{
			OnCommit:          func(TxnInfo) { calls = append(calls, name+".commit") },
			OnAbort:           func(error) { calls = append(calls, name+".abort") },
			OnRestore:         func(RestoreInfo) { calls = append(calls, name+".restore") },
			OnRestoreProgress: func(RestoreProgress) { calls = append(calls, name+".progress") },
			OnRebalance:       func(_, _ []int32) { calls = append(calls, name+".rebalance") },
		}
	}
	c := defaultCfg()
	cp := &c
	for _, o := range []Opt{WithHooks(rec("metrics")), WithHooks(Hooks{}), WithHooks(rec("app"))} {
		o.apply(cp)
	}
	c.hooks.commit(TxnInfo{})
	c.hooks.abort(nil)
	c.hooks.restore(RestoreInfo{})
	c.hooks.restoreProgress(RestoreProgress{})
	c.hooks.rebalance(nil, nil)
	require.Equal(t, []string{
		"metrics.commit", "app.commit",
		"metrics.abort", "app.abort",
		"metrics.restore", "app.restore",
		"metrics.progress", "app.progress",
		"metrics.rebalance", "app.rebalance",
	}, calls)
}
