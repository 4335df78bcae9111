package processor

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestKgoFilterPassesAbortReasonsOnly: kgo's info lines that explain an
// abort reach the log; its info line on every successful EndTxn (one per
// commit, ten a second at the default commit interval) does not.
func TestKgoFilterPassesAbortReasonsOnly(t *testing.T) {
	for msg, pass := range map[string]bool{
		"end transaction response successfully received":                   false,
		"end transaction noticed the cluster now supports KIP-890p2":       false,
		"beginning transaction":                                            false,
		"end transaction with commit not attempted; retrying as abort":     true,
		"end transaction returned TransactionAbortable; retrying as abort": true,
		"transact session in on_revoke; aborting transaction":              true,
		"transact session in on_lost; aborting transaction":                true,
	} {
		h := &recordingHandler{}
		f := kgoFilter{h}
		require.True(t, f.Enabled(context.Background(), slog.LevelInfo))
		require.NoError(t, f.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, msg, 0)))
		require.Equal(t, pass, len(h.at(slog.LevelInfo)) == 1, "%q", msg)
	}
}
