package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/dbsink"
	"github.com/exactly-stream/exactly/dbsink/dbsinkprom"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/examples/payments"
	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/sqldb"
)

// `exactly payments` runs the payment service on the transactional
// database sink; `exactly payments schema` prints its tables' SQL.
var (
	paymentsCommand = app.Command{
		Name:    "payments",
		Summary: "pay each order event exactly once into a SQL database (payments schema prints the tables)",
		Description: "Consume the order service's events (<topic-prefix>order-events) with read_committed and write " +
			"one payment row per order into the payments table of --db-dsn, in one database transaction per batch " +
			"that also moves the consumed offsets in exactly_sink_offsets. On assignment a partition resumes from " +
			"the offsets in the database, never the group's; an owner epoch per partition, bumped on assignment and " +
			"checked in every transaction, keeps a member that lost a partition from writing for it. Malformed " +
			"events go to exactly_sink_dead_letters in the same transaction. Instances with the same --group share " +
			"the partitions. The tables are created when missing; `exactly payments schema --dialect D` prints them.",
		Setup:    paymentsSetup,
		Commands: []app.Command{paymentsSchemaSub},
	}
	paymentsSchemaSub = app.Command{
		Name:        "schema",
		Summary:     "print the SQL of the payment service's tables",
		Description: "Print the CREATE TABLE statements of the payments table and of the sink's offsets and dead-letter tables for --dialect (postgres, mysql or sqlite).",
		Setup:       paymentsSchemaSetup,
	}
)

func paymentsSchemaSetup(fs *flag.FlagSet) app.Runner {
	dialect := fs.String("dialect", "", "the database dialect: postgres, mysql (MariaDB) or sqlite (required)")
	return func(_ context.Context, stdout io.Writer) error {
		d, err := sqldb.ParseDialect(*dialect)
		if err != nil {
			return app.Usagef("--dialect: %v", err)
		}
		_, err = io.WriteString(stdout, payments.SchemaSQL(d))
		return err
	}
}

// paymentsFlags are the payment service's flags.
type paymentsFlags struct {
	brokers, dialect, dsn, prefix, group, id, metricsAddr *string
	maxRecords                                            *int
	session, fetchWait, idleTxn, timeout                  *time.Duration
	sec                                                   *kafkaauth.Flags
}

func newPaymentsFlags(fs *flag.FlagSet) *paymentsFlags {
	host, _ := os.Hostname()
	return &paymentsFlags{
		brokers:     fs.String("brokers", "", "comma-separated seed brokers (required)"),
		dialect:     fs.String("db-dialect", "", "the payment database's dialect: postgres, mysql (MariaDB) or sqlite (required)"),
		dsn:         fs.String("db-dsn", "", "the payment database's data source name, as its driver takes it (pgx, go-sql-driver/mysql, modernc sqlite: file:payments.db) (required)"),
		prefix:      fs.String("topic-prefix", "", "prefix of the order pipeline's topic names"),
		group:       fs.String("group", payments.DefaultGroup, "the sink's name: its consumer group and its rows' key in the sink's tables"),
		id:          fs.String("instance-id", host, "this instance's ID: its client ID is <group>-<instance id>, the owner named in the offsets table (default: the host name)"),
		metricsAddr: fs.String("metrics-addr", "", "serve Prometheus metrics on this address at /metrics (default: none)"),
		maxRecords:  fs.Int("max-records", 1000, "records applied in one database transaction at most"),
		session:     fs.Duration("session-timeout", 45*time.Second, "consumer group session timeout (Java session.timeout.ms); heartbeats go every tenth of it, at most every 3s"),
		fetchWait:   fs.Duration("fetch-max-wait", 500*time.Millisecond, "how long a fetch waits for records (Java fetch.max.wait.ms)"),
		idleTxn:     fs.Duration("db-idle-timeout", 30*time.Second, "the database ends a transaction of this instance that waits this long for its next statement, freeing its locks (a frozen process); 0: never (PostgreSQL idle_in_transaction_session_timeout, MariaDB idle_transaction_timeout, MySQL wait_timeout; none on SQLite)"),
		timeout:     connectTimeoutFlag(fs),
		sec:         kafkaauth.RegisterFlags(fs, ""),
	}
}

func (f *paymentsFlags) validate() (sqldb.Dialect, error) {
	switch {
	case len(app.SplitBrokers(*f.brokers)) == 0:
		return 0, app.Usagef("--brokers (or EXACTLY_BROKERS) is required")
	case *f.dsn == "":
		return 0, app.Usagef("--db-dsn (or EXACTLY_DB_DSN) is required")
	case *f.maxRecords <= 0:
		return 0, app.Usagef("--max-records: want a positive number, got %d", *f.maxRecords)
	case *f.session <= 0:
		return 0, app.Usagef("--session-timeout: want a positive duration, got %s", *f.session)
	case *f.fetchWait <= 0:
		return 0, app.Usagef("--fetch-max-wait: want a positive duration, got %s", *f.fetchWait)
	case *f.idleTxn < 0:
		return 0, app.Usagef("--db-idle-timeout: want a duration of 0 or more, got %s", *f.idleTxn)
	}
	d, err := sqldb.ParseDialect(*f.dialect)
	if err != nil {
		return 0, app.Usagef("--db-dialect (or EXACTLY_DB_DIALECT): %v", err)
	}
	return d, nil
}

func paymentsSetup(fs *flag.FlagSet) app.Runner {
	f := newPaymentsFlags(fs)
	return func(ctx context.Context, stdout io.Writer) error {
		d, err := f.validate()
		if err != nil {
			return err
		}
		sec, err := f.sec.Opts()
		if err != nil {
			return err
		}
		cl, err := connect(ctx, *f.brokers, *f.timeout, sec...)
		if err != nil {
			return err
		}
		cl.Close()
		db, err := openPaymentsDB(ctx, d, *f.dsn, *f.timeout)
		if err != nil {
			return err
		}
		defer db.Close()
		s, err := payments.New(db, d, *f.group, orders.TopicsWithPrefix(*f.prefix),
			dbsink.Brokers(app.SplitBrokers(*f.brokers)...), dbsink.InstanceID(*f.id), dbsink.MaxRecords(*f.maxRecords),
			dbsink.FetchMaxWait(*f.fetchWait), dbsink.IdleTransactionTimeout(*f.idleTxn), dbsink.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
			dbsink.ClientOpts(sec...),
			dbsink.ClientOpts(kgo.SessionTimeout(*f.session), kgo.HeartbeatInterval(min(3*time.Second, *f.session/10))))
		if err != nil {
			return fmt.Errorf("%w: %w", app.ErrUsage, err)
		}
		if *f.metricsAddr != "" {
			stop, err := serveMetrics(*f.metricsAddr, dbsinkprom.NewCollector(*f.group, s.Stats))
			if err != nil {
				return err
			}
			defer stop()
		}
		err = s.Run(ctx)
		st := s.Stats()
		fmt.Fprintf(stdout, "applied %d events in %d transactions, %d dead-lettered, %d rolled back\n", st.RecordsApplied, st.Batches, st.DeadLettered, st.Rollbacks)
		return err
	}
}

// openPaymentsDB opens the payment database, waits up to timeout for it to
// answer and creates the payments table when missing.
func openPaymentsDB(ctx context.Context, d sqldb.Dialect, dsn string, timeout time.Duration) (*sql.DB, error) {
	db, err := sqldb.Open(d, dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: --db-dsn: %w", app.ErrUsage, err)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("the %s database of --db-dsn did not answer within %s (--connect-timeout): %w", d, timeout, err)
	}
	if err := payments.EnsureSchema(pctx, db, d); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
