package bench

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RequestStat sums the requests of one Kafka API that a run's clients sent:
// how many, and their time from the request's write to its response read
// (kgo's BrokerE2E.DurationE2E, which includes the time the broker held
// the request: a produce waiting for acks=all, a partition added to a
// transaction).
type RequestStat struct {
	Count int64         `json:"count"`
	Total time.Duration `json:"total_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Mean is the mean time of one request.
func (s RequestStat) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Total / time.Duration(s.Count)
}

// RequestProfile is a kgo hook (kgo.WithHooks) that sums each API's
// successful requests. One profile serves every client of a run; requests
// after the finish line (while the run stops) count too. cmd/txnprobe
// uses it as well.
type RequestProfile struct {
	mu sync.Mutex
	m  map[int16]*RequestStat
}

var _ kgo.HookBrokerE2E = (*RequestProfile)(nil)

// NewRequestProfile returns an empty profile.
func NewRequestProfile() *RequestProfile {
	return &RequestProfile{m: make(map[int16]*RequestStat)}
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (p *RequestProfile) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if e.Err() != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.m[key]
	if s == nil {
		s = new(RequestStat)
		p.m[key] = s
	}
	d := e.DurationE2E()
	s.Count++
	s.Total += d
	s.Max = max(s.Max, d)
}

// Stats returns the sums by API name (Produce, EndTxn, ...).
func (p *RequestProfile) Stats() map[string]RequestStat {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]RequestStat, len(p.m))
	for k, s := range p.m {
		out[kmsg.NameForKey(k)] = *s
	}
	return out
}

// commitAPIs are the requests a transaction (or an at-least-once batch)
// waits on, in the order it sends them.
var commitAPIs = []string{"Produce", "AddPartitionsToTxn", "AddOffsetsToTxn", "TxnOffsetCommit", "EndTxn", "OffsetCommit"}

// requestSummary describes, per committed transaction (batch), the
// requests of m it waits on: "Produce 3.5 × 47.0ms, EndTxn 1.0 × 4.8ms".
func requestSummary(m *Measurement) string {
	if m == nil || len(m.Requests) == 0 || m.Transactions == 0 {
		return ""
	}
	var parts []string
	for _, api := range commitAPIs {
		s, ok := m.Requests[api]
		if !ok || s.Count == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.1f × %s", api, float64(s.Count)/float64(m.Transactions), roundMs(s.Mean())))
	}
	return strings.Join(parts, ", ")
}

// roundMs rounds d to 0.1 ms.
func roundMs(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
