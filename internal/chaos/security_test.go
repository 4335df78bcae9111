package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/kafkaauth"
)

// TestInstanceEnvironmentCarriesSecurity: the instances get the
// connection settings through their program's environment variables
// (EXACTLY_, with the mirror's --source-/--target- prefixes in mirror mode;
// REVENUE_ and ENRICH_ for the examples' commands), the password
// included, and nothing of them on their command lines, which ps shows.
// A setting the parent inherited but was not given is not passed on.
func TestInstanceEnvironmentCarriesSecurity(t *testing.T) { // not parallel: it sets the environment
	t.Setenv("EXACTLY_SASL_PASSWORD_FILE", "/stale/inherited")
	t.Setenv("EXACTLY_TARGET_TLS_SERVER_NAME", "stale.example.com")
	const password, targetPassword = "chaos-Pa55word-never-on-argv", "target-Pa55word-never-on-argv"
	sec := kafkaauth.Config{
		TLS:  kafkaauth.TLS{CAFile: "/certs/ca.pem"},
		SASL: kafkaauth.SASL{Mechanism: kafkaauth.ScramSHA512, Username: "orders", Password: password},
	}
	tsec := kafkaauth.Config{
		TLS:  kafkaauth.TLS{Enable: true, CertFile: "/certs/c.pem", KeyFile: "/certs/k.pem"},
		SASL: kafkaauth.SASL{Mechanism: kafkaauth.Plain, Username: "mirror", Password: targetPassword},
	}
	for _, tc := range []struct {
		mode string
		want map[string]string // "" means absent
	}{
		{ModePipeline, map[string]string{
			"EXACTLY_TLS_CA_FILE": "/certs/ca.pem", "EXACTLY_SASL_MECHANISM": "SCRAM-SHA-512",
			"EXACTLY_SASL_USERNAME": "orders", "EXACTLY_SASL_PASSWORD": password,
			"EXACTLY_SASL_PASSWORD_FILE": "", "EXACTLY_TLS": "", "EXACTLY_SOURCE_SASL_PASSWORD": "",
		}},
		{ModeMirror, map[string]string{
			"EXACTLY_SOURCE_TLS_CA_FILE": "/certs/ca.pem", "EXACTLY_SOURCE_SASL_MECHANISM": "SCRAM-SHA-512",
			"EXACTLY_SOURCE_SASL_USERNAME": "orders", "EXACTLY_SOURCE_SASL_PASSWORD": password,
			"EXACTLY_TARGET_TLS": "true", "EXACTLY_TARGET_TLS_CERT_FILE": "/certs/c.pem", "EXACTLY_TARGET_TLS_KEY_FILE": "/certs/k.pem",
			"EXACTLY_TARGET_SASL_MECHANISM": "PLAIN", "EXACTLY_TARGET_SASL_USERNAME": "mirror",
			"EXACTLY_TARGET_SASL_PASSWORD": targetPassword, "EXACTLY_TARGET_TLS_SERVER_NAME": "",
			"EXACTLY_SASL_PASSWORD": "",
		}},
		// The examples' commands read their own program's variables.
		{ModeRevenue, map[string]string{
			"REVENUE_TLS_CA_FILE": "/certs/ca.pem", "REVENUE_SASL_MECHANISM": "SCRAM-SHA-512",
			"REVENUE_SASL_USERNAME": "orders", "REVENUE_SASL_PASSWORD": password, "EXACTLY_SASL_USERNAME": "",
		}},
		{ModeEnrich, map[string]string{
			"ENRICH_TLS_CA_FILE": "/certs/ca.pem", "ENRICH_SASL_MECHANISM": "SCRAM-SHA-512",
			"ENRICH_SASL_USERNAME": "orders", "ENRICH_SASL_PASSWORD": password, "EXACTLY_SASL_USERNAME": "",
		}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cfg := &Config{Binary: "/bin/exactly", Mode: tc.mode, Security: sec}
			if tc.mode == ModeMirror {
				cfg.TargetSecurity = tsec
			}
			f := &fleet{cfg: cfg, brokers: "127.0.0.1:9092", targetBrokers: "127.0.0.1:9192", mirrorName: "m", mirrorTopics: []string{"a"}}
			cmd := f.command("chaos-1", t.TempDir(), 100, 100*time.Millisecond)
			env := make(map[string]string)
			for _, kv := range cmd.Env {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			for k, v := range tc.want {
				got, ok := env[k]
				if v == "" {
					require.False(t, ok, "%s=%s should not be set", k, got)
					continue
				}
				require.Equal(t, v, got, k)
			}
			require.Contains(t, env, "PATH", "the rest of the environment is inherited")
			argv := strings.Join(cmd.Args, " ")
			require.NotContains(t, argv, password)
			require.NotContains(t, argv, targetPassword)
			require.NotContains(t, argv, "--sasl")
			require.NotContains(t, argv, "tls")
		})
	}
}

// TestSecurityNeedsRealClusters: the embedded kfake clusters are plain,
// so security settings without the brokers they are for are refused.
func TestSecurityNeedsRealClusters(t *testing.T) {
	t.Parallel()
	sec := kafkaauth.Config{TLS: kafkaauth.TLS{Enable: true}}
	c := Config{Binary: "x", Security: sec}
	c.ensureDefaults()
	require.ErrorContains(t, c.validate(), "connection security (TLS) is for a real cluster")
	c = Config{Binary: "x", Mode: ModeMirror, TargetSecurity: sec}
	c.ensureDefaults()
	require.ErrorContains(t, c.validate(), "target connection security (TLS) needs the target brokers")
	c.Brokers, c.TargetBrokers = []string{"127.0.0.1:1"}, []string{"127.0.0.1:2"}
	require.NoError(t, c.validate())
}
