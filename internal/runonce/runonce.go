// Package runonce guards the lifecycle of a long-running component with a
// Run(ctx) and a Close (the mirror, the outbox relay, the database sink):
// Run runs at most once, Close stops a running Run and waits for it to
// return, Close before Run makes a later Run return at once, and Close is
// idempotent.
package runonce

import (
	"context"
	"errors"
	"sync"
)

// Guard is the lifecycle state. The zero value is not usable: call Init.
type Guard struct {
	closeOnce sync.Once
	closeCtx  context.Context // done once Close is called
	closeNow  context.CancelFunc
	running   sync.WaitGroup
	mu        sync.Mutex
	started   bool // Run was called, or Close was
}

// Init makes g ready. Call it once, from the component's constructor.
func (g *Guard) Init() {
	g.closeCtx, g.closeNow = context.WithCancel(context.Background())
}

// Start begins Run. It returns closed if Close was called before, an
// error naming what if Run was called before, and otherwise a context that
// ends when ctx does or Close is called, and end, which Run must call
// (defer) when it returns.
func (g *Guard) Start(ctx context.Context, what string, closed error) (_ context.Context, end func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.closeCtx.Done():
		return nil, nil, closed
	default:
	}
	if g.started {
		return nil, nil, errors.New(what + ": Run called twice")
	}
	g.started = true
	g.running.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(g.closeCtx, cancel) // Close stops Run
	return ctx, func() {
		stop()
		cancel()
		g.running.Done()
	}, nil
}

// Close stops Run and waits for it to return. If Run never ran (and now
// never will), it calls idle first, if set, to release what Run would
// have. It is idempotent.
func (g *Guard) Close(idle func()) {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closeNow()
		never := !g.started
		g.started = true
		g.mu.Unlock()
		if never && idle != nil {
			idle()
		}
	})
	g.running.Wait()
}

// Closed returns a channel closed once Close is called.
func (g *Guard) Closed() <-chan struct{} { return g.closeCtx.Done() }
