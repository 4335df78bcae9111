package tuning

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestClientOpts(t *testing.T) {
	t.Parallel()
	cl, err := kgo.NewClient(ClientOpts()...)
	require.NoError(t, err)
	defer cl.Close()
	require.Equal(t, time.Second, cl.OptValue(kgo.MetadataMinAge))
	require.Equal(t, 5*time.Millisecond, cl.OptValue(kgo.ConcurrentTransactionsBackoff))

	for tries, want := range map[int]time.Duration{1: 20 * time.Millisecond, 2: 40 * time.Millisecond, 4: 160 * time.Millisecond, 7: time.Second, 50: time.Second} {
		for range 20 {
			d := retryBackoff(tries)
			require.GreaterOrEqual(t, d, want*8/10, "try %d", tries)
			require.LessOrEqual(t, d, want*12/10, "try %d", tries)
		}
	}
}
