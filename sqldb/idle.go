package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/go-sql-driver/mysql"
)

// IdleLimit makes the server end a transaction whose client has gone
// quiet: once the transaction has waited longer than the limit for its
// client's next statement, the server closes the connection, which rolls
// the transaction back and frees its locks. A frozen process (SIGSTOP, a
// VM pause, a long GC pause) in the middle of a transaction otherwise holds
// its row locks until it wakes, and a member waiting for them waits as long.
// A statement that waits for a lock is not idle: the limit never ends a
// transaction that is waiting on the database.
//
// Per dialect:
//   - PostgreSQL: SET LOCAL idle_in_transaction_session_timeout, for the
//     one transaction.
//   - MariaDB (10.3 and later): SET SESSION idle_transaction_timeout, in
//     whole seconds. It stays set on the pooled connection, where it only
//     bounds transactions.
//   - MySQL, which has no such variable: SET SESSION wait_timeout, in whole
//     seconds. It stays set on the pooled connection and also closes it
//     when it sits unused in the pool longer; the driver then opens
//     another.
//   - SQLite: nothing can end a transaction of another process; the zero
//     IdleLimit does nothing.
type IdleLimit struct {
	stmt string
}

// NewIdleLimit returns the limit d for dialect d on db (asking a
// MariaDB/MySQL server which of the two it is). A d of zero or less gives
// the zero IdleLimit: no limit.
func NewIdleLimit(ctx context.Context, db *sql.DB, dialect Dialect, d time.Duration) (IdleLimit, error) {
	if d <= 0 {
		return IdleLimit{}, nil
	}
	secs := int64(math.Ceil(d.Seconds()))
	switch dialect {
	case Postgres:
		return IdleLimit{fmt.Sprintf("SET LOCAL idle_in_transaction_session_timeout = %d", max(d.Milliseconds(), 1))}, nil
	case MySQL:
		var v sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT @@idle_transaction_timeout").Scan(&v); err == nil {
			return IdleLimit{fmt.Sprintf("SET SESSION idle_transaction_timeout = %d", secs)}, nil
		} else if !isUnknownVariable(err) {
			return IdleLimit{}, fmt.Errorf("sqldb: asking the server for idle_transaction_timeout: %w", err)
		}
		return IdleLimit{fmt.Sprintf("SET SESSION wait_timeout = %d", secs)}, nil
	}
	return IdleLimit{}, nil
}

// Apply sets the limit for tx. Call it first in the transaction.
func (l IdleLimit) Apply(ctx context.Context, tx *sql.Tx) error {
	if l.stmt == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, l.stmt); err != nil {
		return fmt.Errorf("sqldb: %s: %w", l.stmt, err)
	}
	return nil
}

// String returns the statement Apply runs ("" for none).
func (l IdleLimit) String() string { return l.stmt }

// isUnknownVariable reports whether err is MySQL's "Unknown system
// variable" (ER_UNKNOWN_SYSTEM_VARIABLE).
func isUnknownVariable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1193
}
