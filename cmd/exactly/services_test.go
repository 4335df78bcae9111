package main

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// Bad flags of `exactly demo-services` are usage errors (exit 2) that name
// the flag, before anything starts. The demo itself runs in
// integration/services_test.go (it needs the built binary for its
// children).
func TestDemoServicesFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"dialect", []string{"--db-dialect", "oracle"}, "--db-dialect"},
		{"postgres without dsns", []string{"--db-dialect", "postgres"}, "--order-db-dsn and --payment-db-dsn are required"},
		{"one dsn", []string{"--order-db-dsn", "file:a.db"}, "--order-db-dsn and --payment-db-dsn"},
		{"same dsn", []string{"--db-dialect", "postgres", "--order-db-dsn", "postgres://x/a", "--payment-db-dsn", "postgres://x/a"}, "--payment-db-dsn"},
		{"duration", []string{"--duration", "0s"}, "--duration"},
		{"rate", []string{"--rate", "0"}, "--rate"},
		{"processors", []string{"--processors", "0"}, "--processors"},
		{"kill every", []string{"--kill-every", "-1s"}, "--kill-every"},
		{"drain", []string{"--drain-timeout", "0s"}, "--drain-timeout"},
		{"log level", []string{"--log-level", "loud"}, "--log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dispatch(context.Background(), append([]string{"demo-services"}, tc.args...), io.Discard)
			require.Error(t, err)
			require.Equal(t, 2, exitCode(err), "%v", err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
