package servicesdemo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/examples/orderservice"
)

// loadStats counts what the load generator did.
type loadStats struct {
	Requests   int // HTTP requests sent
	Accepted   int // orders the API accepted (one per idempotency key)
	Doubled    int // orders sent a second time after their answer
	TimedOut   int // requests the client gave up on and retried
	Retried    int // requests repeated after an error or a timeout
	Replayed   int // answers that said "saved before" (200, Idempotent-Replayed)
	Mismatched []string
}

// load posts orders to url until ctx ends, with client retries: some
// orders are sent twice with the same idempotency key, some requests time
// out on the client and are retried. Every order it starts it finishes
// (retrying until drain ends), so that the accepted set is exact.
type load struct {
	url     string
	runID   string
	rng     *rand.Rand
	rngMu   sync.Mutex
	client  *http.Client
	mu      sync.Mutex
	st      loadStats
	orders  map[string]orders.Order // accepted, by order id
	byKey   map[string]string       // idempotency key -> order id
	ordered int
}

func newLoad(url, runID string, seed uint64) *load {
	return &load{
		url: url, runID: runID, rng: rand.New(rand.NewPCG(seed, 0x5e7c)),
		client: &http.Client{Timeout: 10 * time.Second},
		orders: map[string]orders.Order{}, byKey: map[string]string{},
	}
}

// draw returns a random number in [0, n).
func (l *load) draw(n int) int {
	l.rngMu.Lock()
	defer l.rngMu.Unlock()
	return l.rng.IntN(n)
}

// run posts about rate orders per second from workers goroutines until
// ctx ends; drain bounds how long an order started before that may retry.
func (l *load) run(ctx, drain context.Context, workers, rate int) error {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if err := l.order(drain); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// order creates one order with its own idempotency key.
func (l *load) order(ctx context.Context) error {
	l.mu.Lock()
	l.ordered++
	key := fmt.Sprintf("%s-%d", l.runID, l.ordered)
	l.mu.Unlock()
	req := orderservice.Request{CustomerID: fmt.Sprintf("c-%03d", l.draw(100)), AmountCents: int64(100 + l.draw(10000))}
	body, _ := json.Marshal(req) // a struct of strings and ints
	first := time.Duration(0)
	if l.draw(100) < 5 {
		first = time.Duration(l.draw(3000)) * time.Microsecond // gives up early: the server may or may not commit
	}
	o, err := l.post(ctx, key, body, first)
	if err != nil {
		return err
	}
	if l.draw(100) < 10 { // the client did not get the answer and sends the order again
		again, err := l.post(ctx, key, body, 0)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.st.Doubled++
		if again.OrderID != o.OrderID || again.AmountCents != o.AmountCents || !again.CreatedAt.Equal(o.CreatedAt) {
			l.st.Mismatched = append(l.st.Mismatched, fmt.Sprintf("key %s: first answer %s, second %s", key, o.OrderID, again.OrderID))
		}
		l.mu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.Accepted++
	l.orders[o.OrderID] = o
	l.byKey[key] = o.OrderID
	return nil
}

// post sends the order until it gets an answer: the first attempt with
// timeout first (0: the client's), the others with the client's. An
// answer other than 200 or 201 and 503 is an error.
func (l *load) post(ctx context.Context, key string, body []byte, first time.Duration) (orders.Order, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			l.count(func(s *loadStats) { s.Retried++ })
			select {
			case <-ctx.Done():
				return orders.Order{}, fmt.Errorf("order %s: no answer before the drain ended: %w", key, ctx.Err())
			case <-time.After(time.Duration(min(attempt, 10)) * 20 * time.Millisecond):
			}
		}
		rctx, cancel := context.WithCancel(ctx)
		if attempt == 0 && first > 0 {
			rctx, cancel = context.WithTimeout(ctx, first)
		}
		o, status, err := l.send(rctx, key, body)
		cancel()
		l.count(func(s *loadStats) { s.Requests++ })
		switch {
		case err != nil && attempt == 0 && first > 0:
			l.count(func(s *loadStats) { s.TimedOut++ })
			continue
		case err != nil || status == http.StatusServiceUnavailable:
			continue
		case status == http.StatusOK:
			l.count(func(s *loadStats) { s.Replayed++ })
			return o, nil
		case status == http.StatusCreated:
			return o, nil
		default:
			return orders.Order{}, fmt.Errorf("order %s: the API answered %d", key, status)
		}
	}
}

func (l *load) send(ctx context.Context, key string, body []byte) (orders.Order, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url+"/orders", bytes.NewReader(body))
	if err != nil {
		return orders.Order{}, 0, err
	}
	req.Header.Set(orderservice.HeaderIdempotencyKey, key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return orders.Order{}, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return orders.Order{}, 0, err
	}
	var o orders.Order
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(b, &o); err != nil {
			return orders.Order{}, 0, fmt.Errorf("decoding the answer: %w", err)
		}
	}
	return o, resp.StatusCode, nil
}

func (l *load) count(f func(*loadStats)) {
	l.mu.Lock()
	f(&l.st)
	l.mu.Unlock()
}

// stats returns a copy of the counters.
func (l *load) stats() loadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.Mismatched = append([]string(nil), l.st.Mismatched...)
	return st
}
