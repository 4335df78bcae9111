package orders

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceConfigValidate(t *testing.T) {
	t.Parallel()
	good := ProduceConfig{Count: 10, Customers: 2, Rate: 0, MalformedShare: 0.5, DuplicateShare: 0.5}
	require.NoError(t, good.Validate())
	for _, tc := range []struct {
		name  string
		edit  func(*ProduceConfig)
		field string
	}{
		{"zero count", func(c *ProduceConfig) { c.Count = 0 }, "Count"},
		{"negative count", func(c *ProduceConfig) { c.Count = -1 }, "Count"},
		{"no customers", func(c *ProduceConfig) { c.Customers = 0 }, "Customers"},
		{"negative rate", func(c *ProduceConfig) { c.Rate = -5 }, "Rate"},
		{"malformed above 1", func(c *ProduceConfig) { c.MalformedShare = 1.5 }, "MalformedShare"},
		{"malformed negative", func(c *ProduceConfig) { c.MalformedShare = -0.1 }, "MalformedShare"},
		{"malformed NaN", func(c *ProduceConfig) { c.MalformedShare = math.NaN() }, "MalformedShare"},
		{"duplicate negative", func(c *ProduceConfig) { c.DuplicateShare = -1 }, "DuplicateShare"},
		{"shares above 1", func(c *ProduceConfig) { c.DuplicateShare = 0.6 }, "DuplicateShare"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			tc.edit(&cfg)
			err := cfg.Validate()
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			require.Equal(t, tc.field, ce.Field)
			require.ErrorContains(t, err, tc.field)
		})
	}
}

func generate(t *testing.T, cfg ProduceConfig) ([]*kgo.Record, []recordKind) {
	t.Helper()
	g := newGenerator(cfg)
	var recs []*kgo.Record
	var kinds []recordKind
	for range cfg.Count {
		r, k, err := g.next()
		require.NoError(t, err)
		recs = append(recs, r)
		kinds = append(kinds, k)
	}
	return recs, kinds
}

func TestGenerator(t *testing.T) {
	t.Parallel()
	cfg := ProduceConfig{Count: 5000, Customers: 20, MalformedShare: 0.1, DuplicateShare: 0.1, Seed: 42}
	recs, kinds := generate(t, cfg)
	again, _ := generate(t, cfg)
	for i := range recs {
		require.Equal(t, recs[i].Key, again[i].Key, "record %d not deterministic", i)
		require.Equal(t, recs[i].Value, again[i].Value, "record %d not deterministic", i)
	}

	counts := make(map[recordKind]int)
	valid := make(map[string][]byte) // order id -> value
	for i, r := range recs {
		counts[kinds[i]]++
		require.Equal(t, TopicOrders, r.Topic)
		require.True(t, strings.HasPrefix(string(r.Key), "c-00"), "key %q", r.Key)
		err := decodeAndValidate(string(r.Key), r.Value)
		switch kinds[i] {
		case kindMalformed:
			require.ErrorIs(t, err, ErrMalformed)
		case kindValid:
			require.NoError(t, err)
			o, _ := DecodeOrder(r.Value)
			require.Equal(t, "o-42-", o.OrderID[:5])
			_, reused := valid[o.OrderID]
			require.False(t, reused, "order id %s reused", o.OrderID)
			valid[o.OrderID] = r.Value
		case kindDuplicate:
			require.NoError(t, err)
			o, _ := DecodeOrder(r.Value)
			require.True(t, bytes.Equal(valid[o.OrderID], r.Value), "duplicate of no earlier valid order")
		}
	}
	for k, share := range map[recordKind]float64{kindMalformed: 0.1, kindDuplicate: 0.1, kindValid: 0.8} {
		require.InDelta(t, share, float64(counts[k])/float64(cfg.Count), 0.03, "kind %d", k)
	}
}

func TestProduceRefusesUnsafeClients(t *testing.T) {
	t.Parallel()
	cfg := ProduceConfig{Count: 1, Customers: 1}
	for name, opt := range map[string]kgo.Opt{
		"not idempotent": kgo.DisableIdempotentWrite(),
		"transactional":  kgo.TransactionalID("x"),
	} {
		cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), opt)
		require.NoError(t, err)
		_, err = Produce(context.Background(), cl, cfg)
		cl.Close()
		require.Error(t, err, name)
	}
	_, err := Produce(context.Background(), nil, ProduceConfig{})
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
}

func TestProduceRate(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := c.client(t)
	start := time.Now()
	stats, err := Produce(context.Background(), cl, ProduceConfig{Count: 60, Customers: 3, Rate: 200, Seed: 1})
	require.NoError(t, err)
	require.Equal(t, 60, stats.Produced)
	require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)
}

func TestProduceReturnsFirstError(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := c.client(t, kgo.RecordDeliveryTimeout(2*time.Second))
	stats, err := Produce(context.Background(), cl, ProduceConfig{Count: 100, Customers: 3, Topic: "no-such-topic"})
	require.Error(t, err)
	require.ErrorContains(t, err, "producing record")
	require.Zero(t, stats.Produced)
}
