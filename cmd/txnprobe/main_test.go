package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestProbeOnKfake runs both loops over a small input on an embedded
// cluster with replication factor 3 and checks that each consumed all of
// it and reported the requests a transaction and a batch wait on.
func TestProbeOnKfake(t *testing.T) {
	t.Parallel()
	fake, err := kfake.NewCluster(kfake.NumBrokers(3))
	require.NoError(t, err)
	defer fake.Close()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, probe(ctx, config{
		out: &out, brokers: fake.ListenAddrs(), records: 500, txnSize: 100, interval: 100 * time.Millisecond,
		modes: []string{"eos", "alo"}, partitions: 3, replication: 3, outputs: 3, warm: true,
	}))
	got := out.String()
	// Every record consumed, in batches of at most 100, each ending with
	// one EndTxn (eos) or one OffsetCommit (alo).
	for mode, commit := range map[string]string{"eos": "EndTxn", "alo": "OffsetCommit"} {
		m := regexp.MustCompile(`(?m)^` + mode + `: 500 records in .*, (\d+) batches of .*; per batch: poll .*, warm .*, flush `).FindStringSubmatch(got)
		require.NotNil(t, m, "%s line in:\n%s", mode, got)
		batches, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		require.GreaterOrEqual(t, batches, 5, mode)
		require.Regexp(t, `(?m)^  `+commit+` +`+m[1]+` requests, +1\.00 per batch`, got, mode)
	}
	require.Contains(t, got, "TxnOffsetCommit")
	require.Contains(t, got, "CONCURRENT_TRANSACTIONS in kgo's debug log")
}
