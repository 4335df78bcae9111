package outbox

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// listen wakes the loop on every PostgreSQL notification of the outbox
// channel (Writer.Write sends one in the writing transaction, delivered at
// its commit) until ctx is done. It holds one connection of the pool. A
// lost connection is retried after the poll interval; meanwhile the loop
// polls.
func (r *Relay) listen(ctx context.Context) {
	for {
		err := r.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		r.cfg.logger.Warn("outbox relay: listening for notifications failed; polling meanwhile", "relay", r.cfg.name, "err", err)
		if !sleep(ctx, r.cfg.pollInterval) {
			return
		}
	}
}

func (r *Relay) listenOnce(ctx context.Context) error {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("taking a connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the database driver is %T, not pgx", dc)
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{notifyChannel(r.cfg.table)}.Sanitize()); err != nil {
			return fmt.Errorf("listening: %w", err)
		}
		for {
			r.signal() // rows written before LISTEN, or notified now
			if _, err := pc.WaitForNotification(ctx); err != nil {
				// The connection is in an unknown state (a cancelled
				// wait closes it): database/sql must drop it.
				return fmt.Errorf("%w: waiting for a notification: %w", driver.ErrBadConn, err)
			}
		}
	})
}

// signal wakes the loop if it waits; a wake-up pending already suffices.
func (r *Relay) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}
