// Package tuning holds the kgo client settings the processor's transaction
// session uses for latency. It is internal so that the project's own
// instruments (the bench's bare-session ceiling, probes) run the same client
// as the processor without making the settings part of the library's API.
package tuning

import (
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientOpts returns the kgo options the processor's transaction session
// sets for latency, so that a comparison (the bench's bare-session ceiling)
// runs the same client. User options (KgoOpts) override them.
//
//   - kgo retries CONCURRENT_TRANSACTIONS and leader moves after a metadata
//     refresh; its default minimum metadata age (5 s) stalls the next
//     transaction that long on a real cluster.
//   - With transaction protocol v2 (KIP-890) the first produce of a
//     transaction gets CONCURRENT_TRANSACTIONS while the coordinator still
//     completes the previous one, and kgo's produce path backs off by its
//     general retry backoff: 250 ms, doubling, so a busy loop stalls a
//     quarter second or more per transaction. Java backs off 20 ms on this
//     error (and 100 ms to 1 s on others). The backoff here starts at
//     20 ms and doubles to 1 s, with jitter.
//   - With transaction protocol v1 kgo adds a transaction's partitions with
//     one AddPartitionsToTxn per broker, sent at once; the coordinator
//     takes one and answers the others CONCURRENT_TRANSACTIONS, and kgo
//     retries them after ConcurrentTransactionsBackoff (20 ms). On the
//     three-node Kafka of BENCHMARKS.md a transaction of 100 records met
//     four such retries on average; 5 ms instead took the bare loop from
//     1,523 to 2,614-2,711 records/s (the txnprobe tool). kgo lengthens the
//     backoff itself once the error lasts over a second.
func ClientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.MetadataMinAge(time.Second),
		kgo.RetryBackoffFn(retryBackoff),
		kgo.ConcurrentTransactionsBackoff(5 * time.Millisecond),
	}
}

func retryBackoff(tries int) time.Duration {
	d := min(20*time.Millisecond<<min(max(tries-1, 0), 6), time.Second)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
