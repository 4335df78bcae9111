package processor

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// TestTxnInfoEnding: a commit the broker takes 150 ms to confirm shows in
// TxnInfo.Ending, which is part of Duration. Ending is what a transaction
// loop spends waiting on the broker, the share other loops can use.
func TestTxnInfoEnding(t *testing.T) {
	t.Parallel()
	const delay = 150 * time.Millisecond
	c := newCluster(t, 1)
	brokers := c.ListenAddrs()
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if req.(*kmsg.EndTxnRequest).Commit {
			time.Sleep(delay)
		}
		return nil, nil, false
	})
	var mu sync.Mutex
	var infos []TxnInfo
	produceInputs(t, brokers, 1, 20, nil)
	in := start(t, counterTopology(t), brokers, t.TempDir(), "a", WithHooks(Hooks{OnCommit: func(i TxnInfo) {
		mu.Lock()
		infos = append(infos, i)
		mu.Unlock()
	}}))
	in.waitRecords(t, 20)
	in.close(t)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, infos)
	for _, i := range infos {
		require.GreaterOrEqual(t, i.Ending, delay, "%+v", i)
		require.Less(t, i.Ending, i.Duration, "%+v", i)
	}
}
