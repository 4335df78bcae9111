package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// finishLine records the moment a cumulative count of committed input
// records reaches its target. add is called from commit hooks on any
// goroutine.
type finishLine struct {
	target    int64
	n         atomic.Int64
	firstOnce sync.Once
	first     time.Time // the first commit; read after done is closed
	once      sync.Once
	at        time.Time // written once, before done is closed
	done      chan struct{}
}

func newFinishLine(target int64) *finishLine {
	return &finishLine{target: target, done: make(chan struct{})}
}

func (f *finishLine) add(n int64) {
	f.firstOnce.Do(func() { f.first = time.Now() })
	if f.n.Add(n) >= f.target {
		f.once.Do(func() {
			f.at = time.Now()
			close(f.done)
		})
	}
}

func (f *finishLine) count() int64 { return f.n.Load() }

func (f *finishLine) crossed() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// txnCounts are what a workload reports when it stops: committed and
// aborted transactions (batches, at least once).
type txnCounts struct {
	committed, aborted int64
}

// workload consumes the input until ctx is cancelled, reporting every
// committed batch to the finish line. It returns nil when stopped by ctx.
type workload func(ctx context.Context, fl *finishLine) (txnCounts, error)

// errRunTimeout marks a run that did not commit its input in time.
var errRunTimeout = errors.New("run timed out")

// measure runs w until it committed target records, then stops it. The
// time runs from w's start to the commit that reached target.
func measure(ctx context.Context, timeout time.Duration, target int64, w workload) (Measurement, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fl := newFinishLine(target)
	var (
		wg     sync.WaitGroup
		counts txnCounts
		runErr error
		ended  = make(chan struct{})
	)
	start := time.Now()
	wg.Go(func() {
		defer close(ended)
		counts, runErr = w(rctx, fl)
	})
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	timedOut := false
	select {
	case <-fl.done:
	case <-ended:
	case <-timer.C:
		timedOut = true
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	switch {
	case fl.crossed():
	case runErr != nil:
		return Measurement{}, runErr
	case ctx.Err() != nil:
		return Measurement{}, ctx.Err()
	case timedOut:
		return Measurement{}, fmt.Errorf("%w after %s: %d of %d records committed", errRunTimeout, timeout, fl.count(), target)
	default:
		return Measurement{}, fmt.Errorf("stopped with %d of %d records committed", fl.count(), target)
	}
	m := Measurement{
		Records:      fl.count(),
		Elapsed:      fl.at.Sub(start),
		FirstCommit:  fl.first.Sub(start),
		Transactions: counts.committed,
		Aborted:      counts.aborted,
	}
	m.RecordsPerSec = float64(target) / m.Elapsed.Seconds()
	return m, runErr
}
