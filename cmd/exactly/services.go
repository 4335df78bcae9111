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
	"github.com/exactly-stream/exactly/internal/servicesdemo"
	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/sqldb"
)

// `exactly demo-services` runs the order service, the outbox relay, the
// order stream processor and the payment service end to end under random
// kills, then checks exactly-once from the API to the payment database.
var demoServicesCommand = app.Command{
	Name:    "demo-services",
	Summary: "the order service, relay, stream processor and payment service end to end under random kills, then checked",
	Description: "Start the order service's HTTP API (in this process; orders and their outbox rows in one database " +
		"transaction), the outbox relay, the order stream processor (--processors instances) and the payment service " +
		"(child processes of this binary) on an embedded kfake cluster and two SQLite databases, or on --brokers and " +
		"--db-dialect with --order-db-dsn and --payment-db-dsn. A load generator posts orders for --duration with " +
		"client retries (some orders sent twice with one Idempotency-Key, some requests timed out and retried) while " +
		"the demo SIGKILLs and restarts the relay, a processor instance or the payment service about every " +
		"--kill-every. Then it drains and checks that every accepted order is in the orders table, is published once, " +
		"has one event and one payment row, that no payment lacks an order and nothing was dead-lettered. " +
		"It exits 3 when a check fails.",
	Setup: demoServicesSetup,
}

func demoServicesSetup(fs *flag.FlagSet) app.Runner {
	brokers := fs.String("brokers", "", "run on this cluster (comma-separated seed brokers) instead of an embedded one")
	dialect := fs.String("db-dialect", "sqlite", "the databases: sqlite (files in a temporary directory), postgres or mysql (MariaDB)")
	orderDSN := fs.String("order-db-dsn", "", "the order service's database (required unless --db-dialect is sqlite)")
	paymentDSN := fs.String("payment-db-dsn", "", "the payment service's database, another one (required unless --db-dialect is sqlite)")
	duration := fs.Duration("duration", 30*time.Second, "how long the load and the kills go on")
	seed := fs.Uint64("seed", 0, "seed of the orders, retries and kills (default: from the clock)")
	rate := fs.Int("rate", 100, "orders posted per second")
	processors := fs.Int("processors", 2, "order stream processor instances")
	killEvery := fs.Duration("kill-every", 3*time.Second, "mean interval between two kills")
	drain := fs.Duration("drain-timeout", 2*time.Minute, "how long to wait after the load for every order to be paid")
	binary := fs.String("instance-binary", "", "the exactly binary that runs the children (default: this one)")
	logLevel := fs.String("log-level", "warn", "log level of the demo's own messages: debug, info, warn, error")
	keep := fs.Bool("keep-logs", false, "keep the children's logs and the SQLite files after a passing run too (a failing run keeps them)")
	sec := kafkaauth.RegisterFlags(fs, "")
	return func(ctx context.Context, stdout io.Writer) error {
		d, err := sqldb.ParseDialect(*dialect)
		if err != nil {
			return app.Usagef("--db-dialect: %v", err)
		}
		var lvl slog.Level
		switch {
		case lvl.UnmarshalText([]byte(*logLevel)) != nil:
			return app.Usagef("--log-level: want debug, info, warn or error, got %q", *logLevel)
		case d != sqldb.SQLite && (*orderDSN == "" || *paymentDSN == ""):
			return app.Usagef("--order-db-dsn and --payment-db-dsn are required with --db-dialect %s", d)
		case (*orderDSN == "") != (*paymentDSN == ""):
			return app.Usagef("--order-db-dsn and --payment-db-dsn: give both or neither")
		case *orderDSN != "" && *orderDSN == *paymentDSN:
			return app.Usagef("--payment-db-dsn: must name another database than --order-db-dsn")
		case *duration <= 0:
			return app.Usagef("--duration: want a positive duration, got %s", *duration)
		case *rate <= 0 || *rate > 10000:
			return app.Usagef("--rate: want 1..10000 orders per second, got %d", *rate)
		case *processors <= 0 || *processors > 16:
			return app.Usagef("--processors: want 1..16, got %d", *processors)
		case *killEvery <= 0:
			return app.Usagef("--kill-every: want a positive duration, got %s", *killEvery)
		case *drain <= 0:
			return app.Usagef("--drain-timeout: want a positive duration, got %s", *drain)
		}
		kopts, err := sec.Opts()
		if err != nil {
			return err
		}
		bin := *binary
		if bin == "" {
			if bin, err = os.Executable(); err != nil {
				return fmt.Errorf("finding this binary: %w", err)
			}
		}
		rep, err := servicesdemo.Run(ctx, servicesdemo.Config{
			Binary: bin, Brokers: app.SplitBrokers(*brokers), KgoOpts: kopts,
			Dialect: d, OrderDSN: *orderDSN, PaymentDSN: *paymentDSN,
			Duration: *duration, Seed: *seed, Rate: *rate, Processors: *processors, KillEvery: *killEvery, DrainTimeout: *drain,
			KeepLogs: *keep, Out: stdout, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})),
		})
		if err != nil {
			return err
		}
		rep.Print(stdout)
		if !rep.OK() {
			return app.ErrViolations
		}
		return nil
	}
}
