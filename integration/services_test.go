package integration

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/internal/servicesdemo"
)

// The services demo end to end: the order service's API, the outbox relay,
// the order stream processor and the payment service on the sink, with
// the relay, a processor instance and the payment service SIGKILLed and
// restarted while orders are posted with client retries. Every accepted
// order must be saved once, published once, have one event and one
// payment, with nothing dead-lettered. On every configured database
// (SQLite always; PostgreSQL and MariaDB when configured, two fresh
// databases each) and on KAFKA_BROKERS when set, else an embedded
// cluster. About 35 s per database.
func TestServicesDemo(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		payDB := dbtest.Open(t, db.Dialect)
		seed := rand.Uint64()
		t.Logf("seed %d", seed)
		cfg := servicesdemo.Config{
			Binary: binary, Dialect: db.Dialect, OrderDSN: db.DSN, PaymentDSN: payDB.DSN,
			Duration: 30 * time.Second, Seed: seed, KillEvery: 2 * time.Second, DrainTimeout: 3 * time.Minute,
			Out: testWriter{t}, Log: logger(t, "demo"),
		}
		if bs := os.Getenv("KAFKA_BROKERS"); bs != "" {
			cfg.Brokers = strings.Split(bs, ",")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		rep, err := servicesdemo.Run(ctx, cfg)
		require.NoError(t, err)
		var b bytes.Buffer
		rep.Print(&b)
		t.Log(b.String())
		require.True(t, rep.OK(), "violations:\n%s", strings.Join(rep.Violations, "\n"))

		require.Positive(t, rep.Load.Accepted)
		require.Equal(t, rep.Load.Accepted, rep.Paid)
		require.Equal(t, rep.Load.Accepted, rep.Published)
		for _, kind := range []string{"relay", "order", "payments"} {
			require.Positive(t, rep.Kills[kind], "the demo killed no %s process", kind)
		}
		require.Positive(t, rep.Load.Doubled, "no order was sent twice")
		require.GreaterOrEqual(t, rep.Load.Replayed, rep.Load.Doubled, "a second send was not answered as a replay")
	})
}

// testWriter writes the demo's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
