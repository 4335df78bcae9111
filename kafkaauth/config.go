package kafkaauth

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is how a client secures its connections: TLS, SASL, both or
// neither. The zero value is a plaintext connection without
// authentication.
type Config struct {
	TLS  TLS
	SASL SASL
}

// TLS configures the connection's encryption and, with a client
// certificate, its authentication (mTLS).
type TLS struct {
	// Enable turns TLS on. Setting any other field turns it on too. The
	// default value is false.
	Enable bool

	// CAFile is a PEM file of the certificate authorities that sign the
	// brokers' certificates. The default value is empty: the system's
	// roots.
	CAFile string

	// CertFile and KeyFile are the PEM client certificate and its private
	// key, for brokers that require mTLS (Java ssl.client.auth=required).
	// One needs the other. The default value is empty: no client
	// certificate.
	CertFile, KeyFile string

	// ServerName is the name the brokers' certificates must carry. The
	// default value is empty: the host of the address dialed.
	ServerName string

	// InsecureSkipVerify accepts any broker certificate: anyone on the
	// path can read and change the traffic. For test clusters only. The
	// default value is false.
	InsecureSkipVerify bool
}

// enabled reports whether TLS is on: asked for, or implied by a setting.
func (t TLS) enabled() bool {
	return t.Enable || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// The SASL mechanisms this package configures (Java sasl.mechanism).
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
	OAuthBearer = "OAUTHBEARER"
	AWSMSKIAM   = "AWS_MSK_IAM"
)

// Mechanisms lists the SASL mechanisms this package configures.
var Mechanisms = []string{Plain, ScramSHA256, ScramSHA512, OAuthBearer, AWSMSKIAM}

// SASL configures authentication (Java sasl.mechanism and
// sasl.jaas.config). Each mechanism takes its own settings:
//
//	PLAIN, SCRAM-SHA-256, SCRAM-SHA-512  Username, and Password or PasswordFile
//	OAUTHBEARER                          TokenFile
//	AWS_MSK_IAM                          the environment variables AWS_ACCESS_KEY_ID,
//	                                     AWS_SECRET_ACCESS_KEY and optionally AWS_SESSION_TOKEN
type SASL struct {
	// Mechanism is one of Mechanisms, in any case. The default value is
	// empty: no SASL.
	Mechanism string

	// Username is the user of PLAIN and SCRAM. The default value is
	// empty.
	Username string

	// Password is the password of PLAIN and SCRAM; PasswordFile is the
	// other way to give it. The default value is empty.
	Password Secret

	// PasswordFile is a file holding the password of PLAIN and SCRAM
	// (one trailing newline is ignored), read on each authentication so
	// that a rotated password is picked up by the next connection. The
	// default value is empty.
	PasswordFile string

	// TokenFile is a file holding the OAUTHBEARER token (one trailing
	// newline is ignored), read on each authentication so that the token
	// a sidecar refreshes is picked up by the next connection. The
	// default value is empty.
	TokenFile string
}

// mechanism is Mechanism in upper case.
func (s SASL) mechanism() string { return strings.ToUpper(strings.TrimSpace(s.Mechanism)) }

// Secret is a password or token: it formats as "[redacted]" in fmt and
// slog, whatever the verb; string(s) is the value.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns the same as String, for %#v.
func (s Secret) GoString() string { return s.String() }

// Format writes String for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue returns String, for slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText returns String, for JSON and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Enabled reports whether c asks for TLS or SASL.
func (c Config) Enabled() bool { return c.TLS.enabled() || c.SASL.mechanism() != "" }

// Describe says how c connects, without any secret: "SASL SCRAM-SHA-512
// as user orders over TLS", "mTLS", "plaintext".
func (c Config) Describe() string {
	var transport string
	switch {
	case c.TLS.enabled() && c.TLS.CertFile != "":
		transport = "mTLS"
	case c.TLS.enabled():
		transport = "TLS"
	}
	m := c.SASL.mechanism()
	switch {
	case m == "" && transport == "":
		return "plaintext"
	case m == "":
		return transport
	}
	d := "SASL " + m
	if c.SASL.Username != "" && (m == Plain || m == ScramSHA256 || m == ScramSHA512) {
		d += " as user " + c.SASL.Username
	}
	if transport == "" {
		return d + " without TLS"
	}
	return d + " over " + transport
}

// Validate checks c without connecting: a known mechanism with the
// settings it needs, and readable files (a CA file that parses, a client
// certificate that matches its key). The error is a *FlagError naming
// the setting by its flag name (see RegisterFlags).
func (c Config) Validate() error {
	if _, err := c.tlsConfig(""); err != nil {
		return err
	}
	return c.SASL.validate("")
}

// Opts returns the kgo options of c: kgo.DialTLSConfig when TLS is on,
// kgo.SASL when a mechanism is set, and the hook that lets Check name a
// failed authentication. It validates c first.
func (c Config) Opts() ([]kgo.Opt, error) {
	return c.opts("")
}

// opts is Opts with the flag prefix its errors name.
func (c Config) opts(prefix string) ([]kgo.Opt, error) {
	tc, err := c.tlsConfig(prefix)
	if err != nil {
		return nil, err
	}
	if err := c.SASL.validate(prefix); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.SASL.mechanism(); m != "" {
		opts = append(opts, kgo.SASL(c.SASL.kgoMechanism()))
	}
	if c.Enabled() {
		opts = append(opts, kgo.WithHooks(&watch{config: c.Describe(), mechanism: c.SASL.mechanism()}))
	}
	return opts, nil
}

// readSecretFile reads a password or token file, without its trailing
// newline.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

// tlsVersion is the oldest TLS version offered; Kafka 4 brokers default
// to TLS 1.2 and 1.3.
const tlsVersion = tls.VersionTLS12
