package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// ProduceConfig configures Produce.
type ProduceConfig struct {
	// Count is the number of records to write, malformed and duplicates
	// included. It must be positive.
	Count int
	// Customers is the number of distinct customers (keys "c-0001", ...).
	// It must be positive.
	Customers int
	// Rate is the target rate in records per second; 0 writes as fast as
	// the client allows.
	Rate int
	// MalformedShare is the share of records, in [0, 1], that are malformed
	// (several kinds, see malformedKind).
	MalformedShare float64
	// DuplicateShare is the share of records, in [0, 1], that re-send an
	// earlier valid order with identical key and value. MalformedShare plus
	// DuplicateShare must not exceed 1.
	DuplicateShare float64
	// Seed seeds the generator; the same seed gives the same records. It is
	// also part of every order id ("o-<seed>-<n>"), so runs with different
	// seeds never share an order id.
	Seed int64
	// Topic is the topic written; empty means TopicOrders.
	Topic string
}

// Validate reports the first bad field as a *ConfigError.
func (c ProduceConfig) Validate() error {
	switch {
	case c.Count <= 0:
		return &ConfigError{"Count", fmt.Sprintf("must be positive, got %d", c.Count)}
	case c.Customers <= 0:
		return &ConfigError{"Customers", fmt.Sprintf("must be positive, got %d", c.Customers)}
	case c.Rate < 0:
		return &ConfigError{"Rate", fmt.Sprintf("must not be negative, got %d", c.Rate)}
	case !isShare(c.MalformedShare):
		return &ConfigError{"MalformedShare", fmt.Sprintf("must be in [0, 1], got %v", c.MalformedShare)}
	case !isShare(c.DuplicateShare):
		return &ConfigError{"DuplicateShare", fmt.Sprintf("must be in [0, 1], got %v", c.DuplicateShare)}
	case c.MalformedShare+c.DuplicateShare > 1:
		return &ConfigError{"DuplicateShare", fmt.Sprintf("plus MalformedShare must not exceed 1, got %v + %v", c.DuplicateShare, c.MalformedShare)}
	}
	return nil
}

func isShare(f float64) bool { return !math.IsNaN(f) && f >= 0 && f <= 1 }

func (c ProduceConfig) topic() string {
	if c.Topic == "" {
		return TopicOrders
	}
	return c.Topic
}

// ProduceStats counts the records Produce wrote and the broker acknowledged.
type ProduceStats struct {
	Produced   int // all records
	Valid      int // new valid orders
	Malformed  int // records that must be dead-lettered
	Duplicates int // re-sent valid orders
}

// Produce writes cfg.Count order records to cfg.Topic with cl, which must be
// an idempotent, non-transactional producer (kgo's default). Records are
// keyed by customer id; valid orders have unique ids; malformed records come
// in several kinds; duplicates re-send an earlier valid order unchanged.
//
// Records are produced asynchronously and flushed at the end (and every
// pacing step when cfg.Rate is set); flushing waits for every record
// buffered in cl, not only for Produce's. The first failed record stops
// Produce and is returned, with the stats of the records acknowledged so
// far.
func Produce(ctx context.Context, cl *kgo.Client, cfg ProduceConfig) (ProduceStats, error) {
	if err := cfg.Validate(); err != nil {
		return ProduceStats{}, err
	}
	if err := checkProducer(cl); err != nil {
		return ProduceStats{}, err
	}
	loop, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &producer{cl: cl, gen: newGenerator(cfg), cancel: cancel}
	p.run(loop, cfg)
	p.flush(ctx) // waits out records in flight even after a failure
	return p.result()
}

// checkProducer refuses clients whose plain Produce would not be idempotent
// or would fail outside a transaction.
func checkProducer(cl *kgo.Client) error {
	if disabled, _ := cl.OptValue(kgo.DisableIdempotentWrite).(bool); disabled {
		return errors.New("orders: producing needs an idempotent client (DisableIdempotentWrite is set)")
	}
	if vs := cl.OptValues(kgo.TransactionalID); len(vs) == 2 {
		if set, _ := vs[1].(bool); set {
			return errors.New("orders: producing needs a non-transactional client (TransactionalID is set)")
		}
	}
	return nil
}

// producer drives one Produce call. Promises run on kgo's goroutines, so the
// stats and first error sit under mu.
type producer struct {
	cl     *kgo.Client
	gen    *generator
	cancel context.CancelFunc // stops the loop on the first error

	mu struct {
		sync.Mutex
		stats ProduceStats
		err   error
	}
}

// run produces until done, the first error, or ctx ends. The caller
// flushes.
func (p *producer) run(ctx context.Context, cfg ProduceConfig) {
	pace := newPacer(cfg.Rate)
	for i := 0; i < cfg.Count && ctx.Err() == nil; i++ {
		r, kind, err := p.gen.next()
		if err != nil {
			p.fail(fmt.Errorf("generating record %d: %w", i, err))
			return
		}
		p.cl.Produce(ctx, r, p.promise(i, kind))
		if pace.due(i + 1) {
			p.flush(ctx)
			p.fail(pace.wait(ctx, i+1))
		}
	}
}

func (p *producer) flush(ctx context.Context) {
	if err := p.cl.Flush(ctx); err != nil {
		p.fail(fmt.Errorf("flushing: %w", err))
	}
}

func (p *producer) promise(i int, kind recordKind) func(*kgo.Record, error) {
	return func(_ *kgo.Record, err error) {
		if err != nil {
			p.fail(fmt.Errorf("producing record %d: %w", i, err))
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.mu.stats.Produced++
		switch kind {
		case kindValid:
			p.mu.stats.Valid++
		case kindDuplicate:
			p.mu.stats.Duplicates++
		case kindMalformed:
			p.mu.stats.Malformed++
		}
	}
}

// fail records the first error and stops the loop.
func (p *producer) fail(err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.err == nil {
		p.mu.err = err
		p.cancel()
	}
}

func (p *producer) result() (ProduceStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.stats, p.mu.err
}

// pacer spaces records to a rate: every step records it asks the caller to
// flush and wait until the step's due time.
type pacer struct {
	rate  int
	step  int
	start time.Time
}

func newPacer(rate int) pacer {
	return pacer{rate: rate, step: max(1, rate/100), start: time.Now()}
}

// due reports whether n records produced end a pacing step.
func (p pacer) due(n int) bool { return p.rate > 0 && n%p.step == 0 }

// wait sleeps until n records are due at the rate, or ctx ends.
func (p pacer) wait(ctx context.Context, n int) error {
	at := p.start.Add(time.Duration(float64(n) / float64(p.rate) * float64(time.Second)))
	if d := time.Until(at); d > 0 {
		if err := exactlytest.Sleep(ctx, d); err != nil {
			return fmt.Errorf("pacing: %w", err)
		}
	}
	return nil
}

// recordKind classifies a generated record.
type recordKind int

const (
	kindValid recordKind = iota
	kindDuplicate
	kindMalformed
)

// malformedKind is one way a generated record is malformed. Produce cycles
// through all of them.
type malformedKind int

const (
	badJSON malformedKind = iota
	emptyOrderID
	emptyCustomerID
	keyMismatch
	zeroAmount
	negativeAmount
	fractionalAmount
	stringAmount
	missingCreatedAt
	badCreatedAt
	numMalformedKinds
)

// recentCap bounds the valid records kept as duplicate candidates.
const recentCap = 1024

// generator makes the records of one Produce call, deterministically from
// the seed. It is not safe for concurrent use.
type generator struct {
	cfg       ProduceConfig
	rng       *rand.Rand
	n         int // records generated
	malformed int // malformed records generated
	recent    []*kgo.Record
	base      time.Time
}

func newGenerator(cfg ProduceConfig) *generator {
	seed := uint64(cfg.Seed)
	return &generator{
		cfg:  cfg,
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		base: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// next returns the next record and its kind.
func (g *generator) next() (*kgo.Record, recordKind, error) {
	defer func() { g.n++ }()
	u := g.rng.Float64()
	switch {
	case u < g.cfg.MalformedShare:
		r, err := g.malformedRecord()
		return r, kindMalformed, err
	case u < g.cfg.MalformedShare+g.cfg.DuplicateShare && len(g.recent) > 0:
		orig := g.recent[g.rng.IntN(len(g.recent))]
		return &kgo.Record{Topic: orig.Topic, Key: orig.Key, Value: orig.Value}, kindDuplicate, nil
	}
	r, err := g.validRecord()
	if err != nil {
		return nil, kindValid, err
	}
	g.remember(r)
	return r, kindValid, nil
}

func (g *generator) remember(r *kgo.Record) {
	if len(g.recent) < recentCap {
		g.recent = append(g.recent, r)
		return
	}
	g.recent[g.rng.IntN(recentCap)] = r
}

// order returns a fresh valid order.
func (g *generator) order() Order {
	return Order{
		OrderID:     fmt.Sprintf("o-%d-%d", g.cfg.Seed, g.n),
		CustomerID:  customerID(1 + g.rng.IntN(g.cfg.Customers)),
		AmountCents: 1 + g.rng.Int64N(100_000),
		CreatedAt:   g.base.Add(time.Duration(g.n) * time.Millisecond),
	}
}

func customerID(i int) string { return fmt.Sprintf("c-%04d", i) }

func (g *generator) validRecord() (*kgo.Record, error) {
	o := g.order()
	v, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encoding order: %w", err)
	}
	return &kgo.Record{Topic: g.cfg.topic(), Key: []byte(o.CustomerID), Value: v}, nil
}

func (g *generator) malformedRecord() (*kgo.Record, error) {
	kind := malformedKind(g.malformed % int(numMalformedKinds))
	g.malformed++
	o := g.order()
	v, err := malformedValue(kind, o)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: g.cfg.topic(), Key: []byte(o.CustomerID), Value: v}, nil
}

// malformedValue encodes o broken in the given way.
func malformedValue(kind malformedKind, o Order) ([]byte, error) {
	if kind == badJSON {
		return fmt.Appendf(nil, `{"order_id": %q, "customer_id": %q, "amount_cents": %d,`, o.OrderID, o.CustomerID, o.AmountCents), nil
	}
	m := map[string]any{
		"order_id":     o.OrderID,
		"customer_id":  o.CustomerID,
		"amount_cents": o.AmountCents,
		"created_at":   o.CreatedAt.Format(time.RFC3339Nano),
	}
	switch kind {
	case emptyOrderID:
		m["order_id"] = ""
	case emptyCustomerID:
		m["customer_id"] = ""
	case keyMismatch:
		m["customer_id"] = o.CustomerID + "-other"
	case zeroAmount:
		m["amount_cents"] = 0
	case negativeAmount:
		m["amount_cents"] = -o.AmountCents
	case fractionalAmount:
		m["amount_cents"] = float64(o.AmountCents) + 0.5
	case stringAmount:
		m["amount_cents"] = fmt.Sprint(o.AmountCents)
	case missingCreatedAt:
		delete(m, "created_at")
	case badCreatedAt:
		m["created_at"] = o.CreatedAt.Format(time.DateTime) // no T, no zone
	}
	v, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding malformed order: %w", err)
	}
	return v, nil
}
