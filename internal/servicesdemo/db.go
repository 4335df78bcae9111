package servicesdemo

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	"github.com/exactly-stream/exactly/dbsink"
	"github.com/exactly-stream/exactly/examples/orderservice"
	"github.com/exactly-stream/exactly/examples/payments"
	"github.com/exactly-stream/exactly/outbox"
	"github.com/exactly-stream/exactly/sqldb"
)

// sqlDB is one of the demo's two databases and the DSN its children open.
type sqlDB struct {
	*sql.DB
	dsn string
}

// openDatabases opens (SQLite: creates) the order service's and the
// payment service's databases and creates their tables, so that the
// drain can count rows before the children have run.
func (d *demo) openDatabases(ctx context.Context) error {
	orderDSN, payDSN := d.cfg.OrderDSN, d.cfg.PaymentDSN
	if orderDSN == "" {
		orderDSN, payDSN = "file:"+filepath.Join(d.root, "orders.db"), "file:"+filepath.Join(d.root, "payments.db")
	}
	var err error
	if d.orderDB, err = d.open(ctx, "order", orderDSN); err != nil {
		return err
	}
	if d.payDB, err = d.open(ctx, "payment", payDSN); err != nil {
		return err
	}
	if err := orderservice.EnsureSchema(ctx, d.orderDB.DB, d.cfg.Dialect, outbox.DefaultTable); err != nil {
		return err
	}
	if err := payments.EnsureSchema(ctx, d.payDB.DB, d.cfg.Dialect); err != nil {
		return err
	}
	return dbsink.EnsureSchema(ctx, d.payDB.DB, d.cfg.Dialect, dbsink.DefaultTables())
}

func (d *demo) open(ctx context.Context, which, dsn string) (*sqlDB, error) {
	db, err := sqldb.Open(d.cfg.Dialect, dsn)
	if err != nil {
		return nil, fmt.Errorf("opening the %s database: %w", which, err)
	}
	d.closers = append(d.closers, func() { db.Close() })
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		return nil, fmt.Errorf("connecting to the %s database: %w", which, err)
	}
	return &sqlDB{DB: db, dsn: dsn}, nil
}

// count returns the rows of table.
func (db *sqlDB) count(ctx context.Context, table string) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the rows of %s: %w", table, err)
	}
	return n, nil
}
