package kafkaauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/kafkaauth/kafkaauthtest"
)

// client returns a client of c secured by cfg, closed when the test ends.
func client(t *testing.T, brokers string, cfg kafkaauth.Config, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, err := cfg.Opts()
	require.NoError(t, err)
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(brokers, ",")...)}, opts...), extra...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// TestMechanismsOverTLS: each SASL mechanism kfake serves, over TLS
// verified with the CA file, produces a record and reads it back.
func TestMechanismsOverTLS(t *testing.T) {
	t.Parallel()
	c := kafkaauthtest.Start(t, 1, false, kfake.SeedTopics(1, "t-plain", "t-scram-sha-256", "t-scram-sha-512"))
	for _, m := range []string{kafkaauth.Plain, kafkaauth.ScramSHA256, kafkaauth.ScramSHA512} {
		t.Run(m, func(t *testing.T) {
			cfg := kafkaauth.Config{
				TLS:  kafkaauth.TLS{CAFile: c.Certs.CAFile},
				SASL: kafkaauth.SASL{Mechanism: strings.ToLower(m), Username: kafkaauthtest.Users[m], Password: kafkaauthtest.Password},
			}
			topic := "t-" + strings.ToLower(m)
			cl := client(t, c.Brokers, cfg, kgo.ConsumeTopics(topic))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("hello " + m)}).FirstErr())
			fs := cl.PollFetches(ctx)
			require.NoError(t, fs.Err())
			require.Equal(t, "hello "+m, string(fs.Records()[0].Value))
		})
	}
}

// TestMutualTLS: brokers that require a client certificate accept the
// one the CA signed, and refuse a client without one at once, naming the
// broker.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	c := kafkaauthtest.Start(t, 1, true)
	sasl := kafkaauth.SASL{Mechanism: kafkaauth.ScramSHA512, Username: kafkaauthtest.Scram512, Password: kafkaauthtest.Password}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	good := client(t, c.Brokers, kafkaauth.Config{SASL: sasl, TLS: kafkaauth.TLS{
		CAFile: c.Certs.CAFile, CertFile: c.Certs.ClientCertFile, KeyFile: c.Certs.ClientKeyFile}})
	require.NoError(t, good.Ping(ctx))

	noCert := client(t, c.Brokers, kafkaauth.Config{SASL: sasl, TLS: kafkaauth.TLS{CAFile: c.Certs.CAFile}})
	err := noCert.Ping(ctx)
	require.Error(t, err)
	aerr := kafkaauth.Check(noCert, err, c.Brokers)
	require.Error(t, aerr, "a refused client certificate is an authentication failure: %v", err)
	require.Contains(t, aerr.Error(), c.Brokers)
}

// TestUntrustedBrokerIsAnAuthFailure: a broker certificate that the CA
// file does not vouch for fails at once, not as an unreachable broker.
func TestUntrustedBrokerIsAnAuthFailure(t *testing.T) {
	t.Parallel()
	c := kafkaauthtest.Start(t, 1, false)
	for name, tls := range map[string]kafkaauth.TLS{
		"other CA":    {CAFile: c.Certs.OtherCAFile},
		"system root": {Enable: true},
		"wrong name":  {CAFile: c.Certs.CAFile, ServerName: "broker.example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			cl := client(t, c.Brokers, kafkaauth.Config{TLS: tls})
			err := cl.Ping(context.Background())
			require.Error(t, err)
			require.True(t, kafkaauth.IsAuthFailure(err), "%v", err)
			aerr := kafkaauth.Check(cl, err, c.Brokers)
			require.ErrorContains(t, aerr, "authentication failed at "+c.Brokers+" with TLS")
		})
	}
	cl := client(t, c.Brokers, kafkaauth.Config{TLS: kafkaauth.TLS{InsecureSkipVerify: true},
		SASL: kafkaauth.SASL{Mechanism: kafkaauth.Plain, Username: kafkaauthtest.PlainUser, Password: kafkaauthtest.Password}})
	require.NoError(t, cl.Ping(context.Background()), "the unsafe switch accepts any certificate")
}

// TestWrongPasswordIsNamedWithoutTheSecret: a wrong password (kfake hangs
// up on the SASL exchange) or an unknown user gives an *AuthError naming
// the mechanism, the user and the broker, and never the password.
func TestWrongPasswordIsNamedWithoutTheSecret(t *testing.T) {
	t.Parallel()
	c := kafkaauthtest.Start(t, 1, false)
	const wrong = "wrong-Pa55word-never-printed"
	for _, m := range []string{kafkaauth.Plain, kafkaauth.ScramSHA256, kafkaauth.ScramSHA512} {
		t.Run(m, func(t *testing.T) {
			var logs bytes.Buffer
			cl := client(t, c.Brokers, kafkaauth.Config{TLS: kafkaauth.TLS{CAFile: c.Certs.CAFile},
				SASL: kafkaauth.SASL{Mechanism: m, Username: kafkaauthtest.Users[m], Password: wrong}},
				kgo.WithLogger(kgo.BasicLogger(&logs, kgo.LogLevelDebug, nil)))
			err := cl.Ping(context.Background())
			require.Error(t, err)
			aerr := kafkaauth.Check(cl, err, c.Brokers)
			require.Error(t, aerr)
			var ae *kafkaauth.AuthError
			require.ErrorAs(t, aerr, &ae)
			require.Equal(t, c.Brokers, ae.Broker)
			require.Contains(t, aerr.Error(), "SASL "+m+" as user "+kafkaauthtest.Users[m]+" over TLS")
			for _, s := range []string{aerr.Error(), fmt.Sprintf("%+v", aerr), logs.String()} {
				require.NotContains(t, s, wrong)
			}
		})
	}
}

// TestValidateNamesTheFlag: a configuration that cannot work is refused
// before any connection, by a *FlagError naming the flag, prefix
// included, and never a secret.
func TestValidateNamesTheFlag(t *testing.T) { // not parallel: it sets the environment
	dir := t.TempDir()
	certs := kafkaauthtest.NewCerts(t)
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		flag string
		want string
	}{
		"unknown mechanism":    {[]string{"--sasl-mechanism", "GSSAPI"}, nil, "sasl-mechanism", `unknown SASL mechanism "GSSAPI"`},
		"no username":          {[]string{"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-password", "pw-secret"}, nil, "sasl-username", "required with SASL mechanism SCRAM-SHA-512"},
		"no password":          {[]string{"--sasl-mechanism", "plain", "--sasl-username", "u"}, nil, "sasl-password", "--sasl-password-file"},
		"password twice":       {[]string{"--sasl-mechanism", "PLAIN", "--sasl-username", "u", "--sasl-password", "pw-secret", "--sasl-password-file", notPEM}, nil, "sasl-password-file", "give one"},
		"unreadable pw file":   {[]string{"--sasl-mechanism", "PLAIN", "--sasl-username", "u", "--sasl-password-file", filepath.Join(dir, "none")}, nil, "sasl-password-file", "no such file"},
		"username, no mech":    {[]string{"--sasl-username", "u"}, nil, "sasl-username", "--sasl-mechanism is not"},
		"oauth without token":  {[]string{"--sasl-mechanism", "OAUTHBEARER"}, nil, "sasl-token-file", "required"},
		"oauth token missing":  {[]string{"--sasl-mechanism", "OAUTHBEARER", "--sasl-token-file", filepath.Join(dir, "none")}, nil, "sasl-token-file", "no such file"},
		"aws without env":      {[]string{"--sasl-mechanism", "AWS_MSK_IAM"}, map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "sasl-mechanism", "AWS_ACCESS_KEY_ID"},
		"aws with user":        {[]string{"--sasl-mechanism", "AWS_MSK_IAM", "--sasl-username", "u"}, nil, "sasl-mechanism", "not from --sasl-username"},
		"cert without key":     {[]string{"--tls-cert-file", certs.ClientCertFile}, nil, "tls-key-file", "required with --tls-cert-file"},
		"key without cert":     {[]string{"--tls-key-file", certs.ClientKeyFile}, nil, "tls-cert-file", "required with --tls-key-file"},
		"cert with wrong key":  {[]string{"--tls-cert-file", certs.ClientCertFile, "--tls-key-file", certs.CAFile}, nil, "tls-cert-file", "loading the client certificate"},
		"unreadable CA":        {[]string{"--tls-ca-file", filepath.Join(dir, "none.pem")}, nil, "tls-ca-file", "no such file"},
		"CA file without cert": {[]string{"--tls-ca-file", notPEM}, nil, "tls-ca-file", "holds no PEM certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			for _, prefix := range []string{"", "source-"} {
				fs := flag.NewFlagSet("test", flag.ContinueOnError)
				f := kafkaauth.RegisterFlags(fs, prefix)
				args := make([]string, len(tc.args))
				for i, a := range tc.args {
					args[i] = strings.Replace(a, "--", "--"+prefix, 1)
				}
				require.NoError(t, fs.Parse(args))
				err := f.Validate()
				var fe *kafkaauth.FlagError
				require.ErrorAs(t, err, &fe)
				require.Equal(t, prefix+tc.flag, fe.Flag)
				require.Contains(t, fe.Problem, strings.ReplaceAll(tc.want, "--", "--"+prefix))
				require.NotContains(t, err.Error(), "pw-secret")
			}
		})
	}
}

// TestDescribe: how a configuration is named in errors and logs.
func TestDescribe(t *testing.T) {
	t.Parallel()
	for want, c := range map[string]kafkaauth.Config{
		"plaintext": {},
		"TLS":       {TLS: kafkaauth.TLS{Enable: true}},
		"mTLS":      {TLS: kafkaauth.TLS{CertFile: "c", KeyFile: "k"}},
		"SASL SCRAM-SHA-256 as user u without TLS": {SASL: kafkaauth.SASL{Mechanism: "scram-sha-256", Username: "u", Password: "p"}},
		"SASL OAUTHBEARER over TLS":                {SASL: kafkaauth.SASL{Mechanism: "OAUTHBEARER", TokenFile: "f"}, TLS: kafkaauth.TLS{Enable: true}},
	} {
		require.Equal(t, want, c.Describe())
	}
}

// TestSecretNeverFormats: a Secret prints as [redacted] through fmt,
// slog and JSON, whatever the verb.
func TestSecretNeverFormats(t *testing.T) {
	t.Parallel()
	const pw = "hunter2-never-printed"
	c := kafkaauth.Config{SASL: kafkaauth.SASL{Mechanism: "PLAIN", Username: "u", Password: pw}}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "password", c.SASL.Password, "config", c)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "password", c.SASL.Password, "config", c)
	js, err := json.Marshal(c)
	require.NoError(t, err)
	out := fmt.Sprintf("%v %+v %#v %s %q %x", c, c, c, c.SASL.Password, c.SASL.Password, c.SASL.Password) + logs.String() + string(js)
	require.NotContains(t, out, pw)
	require.Contains(t, out, "[redacted]")
	require.Empty(t, kafkaauth.Secret("").String())
}

// TestHelpShowsNoSecret: the password flag's default, and its value once
// set, never print.
func TestHelpShowsNoSecret(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	kafkaauth.RegisterFlags(fs, "target-")
	require.NoError(t, fs.Parse([]string{"--target-sasl-password", "hunter2-never-printed"}))
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	fs.VisitAll(func(f *flag.Flag) { fmt.Fprintf(&help, "%s=%s\n", f.Name, f.Value) })
	require.NotContains(t, help.String(), "hunter2")
	require.Contains(t, help.String(), "-target-sasl-mechanism")
	require.Contains(t, help.String(), "of the target cluster")
}
