// Package groupscope fences a consumer-group client's callbacks off once
// its owner stops, and bounds how long closing the client waits to leave
// the group. The processor's sessions and the mirror's source client use
// it; both give kgo a context of their own (kgo.WithContext) so that a
// close can be cut short.
package groupscope

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// LeaveTimeout bounds how long Close waits for a client to leave its
// group. kgo sends JoinGroup with the client's context, and a close waits
// for its answer before it leaves: during a rebalance the coordinator holds
// that answer until every member rejoined or the rebalance timeout (60 s by
// default) passed, longer than a deployment's grace period (Kubernetes: 30
// s) leaves a stopping process. Callers end their transactions before
// closing, so nothing is lost by going on: the group drops the member at
// its session timeout, and the abandoned close finishes at once once the
// client's context is cancelled.
const LeaveTimeout = 10 * time.Second

// ErrClosed is what Do returns once the scope is closed.
var ErrClosed = errors.New("group scope closed")

// Scope fences off a client's group callbacks once its owner stops. kgo
// gives a callback the client's context, which ends only once the client
// is closed, and the close waits for the callback; and a close that Close
// stopped waiting for may still run callbacks later, while the owner (or
// its next client) goes on. So callbacks run under a scope: closing it
// cancels a running callback's context, waits for it to return, and makes
// later callbacks return at once.
type Scope struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.RWMutex
	closed bool
}

// New returns an open scope whose context derives from ctx.
func New(ctx context.Context) *Scope {
	s := &Scope{}
	s.ctx, s.cancel = context.WithCancel(ctx)
	return s
}

// Guard wraps a partition callback (kgo.OnPartitionsAssigned, Revoked,
// Lost): it runs with the scope's context, and not at all once the scope is
// closed.
func (s *Scope) Guard(fn func(context.Context, *kgo.Client, map[string][]int32)) func(context.Context, *kgo.Client, map[string][]int32) {
	return func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if !s.closed {
			fn(s.ctx, cl, m)
		}
	}
}

// Do runs fn with the scope's context unless the scope is closed, when it
// returns ErrClosed; Close waits for a running fn.
func (s *Scope) Do(fn func(context.Context) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return fn(s.ctx)
}

// Close cancels the scope's context, waits for running callbacks and makes
// later ones return at once. It is idempotent.
func (s *Scope) Close() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}

// Close closes a group client through closeFn (kgo.Client.Close, or a
// session's Close), waiting at most timeout for it to leave the group
// before cancelling the client's context with cancelClient, which fails the
// request that holds the close (a JoinGroup the coordinator holds until the
// rebalance ends); the close then returns at once. The group drops a member
// that did not leave at its session timeout. Close of the scope first, so
// that no callback runs meanwhile.
func Close(closeFn func(), cancelClient context.CancelFunc, timeout time.Duration, logger *slog.Logger) {
	defer cancelClient()
	done := make(chan struct{})
	go func() {
		defer close(done)
		closeFn()
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	logger.Warn("leaving the group takes too long (a rebalance holds our JoinGroup); closing without leaving: the group drops this member at its session timeout", "waited", timeout)
	cancelClient()
	<-done
}
