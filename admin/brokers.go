package admin

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// API keys the doctor grades the brokers on.
var (
	// exactly-once with group fencing needs TxnOffsetCommit v3 (KIP-447,
	// Kafka 2.5).
	keyTxnOffsetCommit = kmsg.TxnOffsetCommit.Int16()
	// The transaction checks need KIP-664 (Kafka 3.0).
	txnAPIKeys = []int16{kmsg.DescribeProducers.Int16(), kmsg.DescribeTransactions.Int16(), kmsg.ListTransactions.Int16()}
)

// brokers lists the brokers and asks each for its API versions. It
// reports false when no broker answers, which ends the run.
func (d *doctor) brokers(ctx context.Context) bool {
	mctx, cancel := context.WithTimeout(ctx, d.o.ConnectTimeout)
	begin := time.Now()
	m, err := d.adm.BrokerMetadata(mctx)
	cancel()
	if err != nil {
		d.r.add(Critical, CheckBrokers, "cluster", "%s", unreachable(d.cl, err, d.o.ConnectTimeout, time.Since(begin)))
		return false
	}
	for _, b := range m.Brokers {
		br := Broker{ID: b.NodeID, Address: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))}
		if b.Rack != nil {
			br.Rack = *b.Rack
		}
		d.r.Brokers = append(d.r.Brokers, br)
	}
	vs, err := d.adm.ApiVersions(ctx)
	if err != nil {
		d.r.add(Critical, CheckBrokers, "cluster", "asking the brokers for their API versions: %s", err)
		return false
	}
	d.txnAPIs = true
	var noKIP447, noKIP664 []string
	for i := range d.r.Brokers {
		br := &d.r.Brokers[i]
		v, ok := vs[br.ID]
		switch {
		case !ok:
			br.Error = "not asked"
		case v.Err != nil:
			br.Error = v.Err.Error()
		default:
			br.Reachable, br.Version = true, v.VersionGuess()
			if max, ok := v.KeyMaxVersion(keyTxnOffsetCommit); !ok || max < 3 {
				noKIP447 = append(noKIP447, strconv.Itoa(int(br.ID)))
			}
			for _, k := range txnAPIKeys {
				if _, ok := v.KeyMaxVersion(k); !ok {
					noKIP664 = append(noKIP664, strconv.Itoa(int(br.ID)))
					d.txnAPIs = false
					break
				}
			}
		}
		if !br.Reachable {
			d.r.add(Warning, CheckBrokers, fmt.Sprintf("broker %d", br.ID), "in the metadata at %s but not reachable from here: %s", br.Address, br.Error)
		}
	}
	if len(noKIP447) > 0 {
		d.r.add(Critical, CheckBrokers, "brokers "+strings.Join(noKIP447, ","), "no TxnOffsetCommit v3 (KIP-447, Kafka 2.5+): exactly-once group fencing is not possible")
	}
	if len(noKIP664) > 0 {
		d.r.add(Warning, CheckBrokers, "brokers "+strings.Join(noKIP664, ","), "no DescribeProducers/DescribeTransactions/ListTransactions (KIP-664, Kafka 3.0+): transactions not checked")
	}
	return true
}

// unreachable says what the first metadata request tried and how it
// failed: a refused connection fails at once, a silent broker when the
// connect timeout or, for a connection in its handshake, the client's request
// timeout overhead passes, whichever ends the wait.
func unreachable(cl *kgo.Client, err error, timeout, took time.Duration) string {
	seeds := "the seed brokers"
	if v, ok := cl.OptValue(kgo.SeedBrokers).([]string); ok && len(v) > 0 {
		seeds += " " + strings.Join(v, ",")
	}
	when := "at once"
	if took >= 100*time.Millisecond {
		when = "after " + took.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("no answer from %s: asking for metadata failed %s (connect timeout %s): %s", seeds, when, timeout, err)
}
