package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/outbox"
	"github.com/exactly-stream/exactly/outbox/outboxprom"
	"github.com/exactly-stream/exactly/sqldb"
)

// `exactly relay` publishes an outbox table to Kafka exactly once; `exactly
// relay schema` prints the table's SQL.
var (
	relayCommand = app.Command{
		Name:    "relay",
		Summary: "publish the rows of a database outbox table to Kafka exactly once (relay schema prints its SQL)",
		Description: "Read committed rows of the outbox table (--table) of the database --db-dsn in batches, in id order, " +
			"and produce each batch in one Kafka transaction together with a progress record (in the compacted topic " +
			"<name>-outbox-progress) naming the rows it published; delete those rows only after the commit. On start it " +
			"initializes the transactional ID <name>-outbox, which fences every earlier relay of that --name, and finishes " +
			"the last committed batch's delete before reading anything new. No row is published twice and none is lost, " +
			"whatever the order its transaction committed in. A row whose topic does not exist or whose headers are " +
			"invalid stops the relay (exit 1) with the row's id; it stays in the table. On PostgreSQL writes wake the " +
			"relay through LISTEN/NOTIFY; otherwise it polls every --poll-interval. `exactly relay schema` prints the " +
			"CREATE TABLE statement.",
		Setup:    relaySetup,
		Commands: []app.Command{relaySchemaSub},
	}
	relaySchemaSub = app.Command{
		Name:        "schema",
		Summary:     "print the outbox table's CREATE TABLE statement",
		Description: "Print the CREATE TABLE statement of the outbox table --table for the database --dialect.",
		Setup:       relaySchemaSetup,
	}
)

func relaySetup(fs *flag.FlagSet) app.Runner {
	dialect := fs.String("db-dialect", "postgres", "the database: postgres, mysql (MariaDB) or sqlite")
	dsn := fs.String("db-dsn", "", "the database's data source name, as its driver takes it (pgx, go-sql-driver/mysql, modernc sqlite) (required)")
	brokers := fs.String("brokers", "", "comma-separated seed brokers (required)")
	name := fs.String("name", "outbox", "the relay's name: its transactional ID is <name>-outbox, its progress topic <name>-outbox-progress")
	table := fs.String("table", outbox.DefaultTable, "the outbox table")
	create := fs.Bool("create-table", false, "create the outbox table if it does not exist")
	batch := fs.Int("batch-size", 500, "rows per batch: one Kafka transaction, one delete")
	poll := fs.Duration("poll-interval", time.Second, "how long to wait for new rows before looking again (on PostgreSQL a fallback: writes notify)")
	txnTimeout := fs.Duration("transaction-timeout", 10*time.Second, "Kafka transaction timeout (Java transaction.timeout.ms)")
	idleTxn := fs.Duration("db-idle-timeout", 30*time.Second, "the database ends the relay's delete transaction when it waits this long for its next statement, freeing its locks (a frozen process); 0: never")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics on this address at /metrics (default: none)")
	timeout := connectTimeoutFlag(fs)
	sec := kafkaauth.RegisterFlags(fs, "")
	return func(ctx context.Context, stdout io.Writer) error {
		d, err := sqldb.ParseDialect(*dialect)
		switch {
		case err != nil:
			return app.Usagef("--db-dialect: %v", err)
		case *dsn == "":
			return app.Usagef("--db-dsn (or EXACTLY_DB_DSN) is required")
		case len(app.SplitBrokers(*brokers)) == 0:
			return app.Usagef("--brokers (or EXACTLY_BROKERS) is required")
		case *batch <= 0:
			return app.Usagef("--batch-size: want a positive number of rows, got %d", *batch)
		case *poll <= 0:
			return app.Usagef("--poll-interval: want a positive duration, got %s", *poll)
		case *txnTimeout <= 0:
			return app.Usagef("--transaction-timeout: want a positive duration, got %s", *txnTimeout)
		case *idleTxn < 0:
			return app.Usagef("--db-idle-timeout: want a duration of 0 or more, got %s", *idleTxn)
		case outbox.Schema(d, *table) == "":
			return app.Usagef("--table: %q is not a plain SQL identifier", *table)
		}
		kopts, err := sec.Opts()
		if err != nil {
			return err
		}
		cl, err := connect(ctx, *brokers, *timeout, kopts...)
		if err != nil {
			return err
		}
		cl.Close()
		db, err := sqldb.Open(d, *dsn)
		if err != nil {
			return fmt.Errorf("%w: --db-dsn: %w", app.ErrUsage, err)
		}
		defer db.Close()
		pctx, cancel := context.WithTimeout(ctx, *timeout)
		err = db.PingContext(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("connecting to the %s database: %w", d, err)
		}
		if *create {
			if _, err := db.ExecContext(ctx, outbox.Schema(d, *table)); err != nil {
				return fmt.Errorf("creating the outbox table %s: %w", *table, err)
			}
		}
		r, err := outbox.NewRelay(*name, db, d, outbox.Brokers(app.SplitBrokers(*brokers)...), outbox.KgoOpts(kopts...),
			outbox.Table(*table), outbox.BatchSize(*batch), outbox.PollInterval(*poll), outbox.TransactionTimeout(*txnTimeout), outbox.IdleTransactionTimeout(*idleTxn),
			outbox.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
		if err != nil {
			return fmt.Errorf("%w: %w", app.ErrUsage, err)
		}
		defer r.Close()
		if *metricsAddr != "" {
			stop, err := serveMetrics(*metricsAddr, outboxprom.NewCollector(*name, r.Stats))
			if err != nil {
				return err
			}
			defer stop()
		}
		err = r.Run(ctx)
		st := r.Stats()
		fmt.Fprintf(stdout, "relayed %d rows in %d batches, %d transactions aborted\n", st.RowsRelayed, st.Batches, st.TxnsAborted)
		return err
	}
}

func relaySchemaSetup(fs *flag.FlagSet) app.Runner {
	dialect := fs.String("dialect", "postgres", "the database: postgres, mysql (MariaDB) or sqlite")
	table := fs.String("table", outbox.DefaultTable, "the outbox table's name")
	return func(_ context.Context, stdout io.Writer) error {
		d, err := sqldb.ParseDialect(*dialect)
		if err != nil {
			return app.Usagef("--dialect: %v", err)
		}
		s := outbox.Schema(d, *table)
		if s == "" {
			return app.Usagef("--table: %q is not a plain SQL identifier", *table)
		}
		_, err = io.WriteString(stdout, s)
		return err
	}
}
