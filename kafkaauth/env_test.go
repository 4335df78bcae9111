package kafkaauth

import (
	"flag"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEnvironCarriesTheConfig: Environ puts every setting, the password
// included, into the variables a program of package app reads for the
// flags (with and without a prefix), drops the ones the parent's
// environment held, and keeps everything else.
func TestEnvironCarriesTheConfig(t *testing.T) {
	t.Parallel()
	c := Config{
		TLS: TLS{Enable: true, CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem", ServerName: "kafka.example.com", InsecureSkipVerify: true},
		SASL: SASL{Mechanism: ScramSHA512, Username: "orders", Password: "pa55=word with spaces",
			PasswordFile: "/pw", TokenFile: "/token"}, // not a valid combination; Environ copies, it does not check
	}
	parent := []string{"PATH=/bin", "EXACTLY_SOURCE_SASL_USERNAME=stale", "EXACTLY_SOURCE_TLS_SERVER_NAME=stale",
		"EXACTLY_SOURCE_SASL_PASSWORD=stale", "AWS_ACCESS_KEY_ID=AKID", "EXACTLY_BROKERS=b:9092", "EXACTLY_SASL_USERNAME=unprefixed"}
	env := c.Environ(parent, "EXACTLY_", "source-")
	require.ElementsMatch(t, []string{"PATH=/bin", "AWS_ACCESS_KEY_ID=AKID", "EXACTLY_BROKERS=b:9092", "EXACTLY_SASL_USERNAME=unprefixed",
		"EXACTLY_SOURCE_TLS=true", "EXACTLY_SOURCE_TLS_CA_FILE=/ca.pem", "EXACTLY_SOURCE_TLS_CERT_FILE=/c.pem",
		"EXACTLY_SOURCE_TLS_KEY_FILE=/k.pem", "EXACTLY_SOURCE_TLS_SERVER_NAME=kafka.example.com",
		"EXACTLY_SOURCE_TLS_INSECURE_SKIP_VERIFY=true", "EXACTLY_SOURCE_SASL_MECHANISM=SCRAM-SHA-512",
		"EXACTLY_SOURCE_SASL_USERNAME=orders", "EXACTLY_SOURCE_SASL_PASSWORD=pa55=word with spaces",
		"EXACTLY_SOURCE_SASL_PASSWORD_FILE=/pw", "EXACTLY_SOURCE_SASL_TOKEN_FILE=/token"}, env)
	require.Equal(t, c, parseEnv(t, env, "EXACTLY_", "source-"), "the flags read back from the variables give the same Config")

	// Unset settings get no variable, and inherited ones are dropped: the
	// child must not connect with a stale user of its parent.
	plain := Config{SASL: SASL{Mechanism: Plain, Username: "u", PasswordFile: "/pw"}}
	env = plain.Environ(parent, "EXACTLY_", "source-")
	require.ElementsMatch(t, []string{"PATH=/bin", "AWS_ACCESS_KEY_ID=AKID", "EXACTLY_BROKERS=b:9092", "EXACTLY_SASL_USERNAME=unprefixed",
		"EXACTLY_SOURCE_SASL_MECHANISM=PLAIN", "EXACTLY_SOURCE_SASL_USERNAME=u", "EXACTLY_SOURCE_SASL_PASSWORD_FILE=/pw"}, env)
	require.Equal(t, plain, parseEnv(t, env, "EXACTLY_", "source-"))
	require.Equal(t, []string{"PATH=/bin"}, Config{}.Environ([]string{"PATH=/bin", "EXACTLY_TLS=true"}, "EXACTLY_", ""))
}

// parseEnv sets the flags RegisterFlags(fs, flagPrefix) declares from
// their variables in env, as package app does, and returns the Config.
func parseEnv(t *testing.T, env []string, envPrefix, flagPrefix string) Config {
	t.Helper()
	vars := make(map[string]string)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	f := RegisterFlags(fs, flagPrefix)
	fs.VisitAll(func(fl *flag.Flag) {
		if v, ok := vars[envPrefix+strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))]; ok {
			require.NoError(t, fs.Set(fl.Name, v))
		}
	})
	return f.Config()
}
