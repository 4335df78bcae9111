package kafkaauth

import (
	"flag"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Flags are the connection-security flags RegisterFlags declared.
type Flags struct {
	prefix string
	c      Config
}

// RegisterFlags declares the connection-security flags on fs, each name
// after prefix ("" or e.g. "source-" for --source-tls):
//
//	--tls                       use TLS (also on when any --tls-* flag is set)
//	--tls-ca-file               PEM CAs of the brokers' certificates (default: the system's roots)
//	--tls-cert-file             PEM client certificate, for mTLS (with --tls-key-file)
//	--tls-key-file              PEM private key of --tls-cert-file
//	--tls-server-name           name the brokers' certificates carry (default: the host dialed)
//	--tls-insecure-skip-verify  UNSAFE: accept any broker certificate
//	--sasl-mechanism            PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM
//	--sasl-username             user of PLAIN and SCRAM
//	--sasl-password             password of PLAIN and SCRAM (better: its environment variable)
//	--sasl-password-file        file holding the password, read on each connection
//	--sasl-token-file           file holding the OAUTHBEARER token, read on each connection
//
// No flag has a default that --help would print. --sasl-password's value
// formats as "[redacted]" and reports IsSecret, so that package app never
// shows it, even when it comes from the environment.
func RegisterFlags(fs *flag.FlagSet, prefix string) *Flags {
	f := &Flags{prefix: prefix}
	of := ""
	if prefix != "" {
		of = " of the " + strings.TrimSuffix(prefix, "-") + " cluster"
	}
	p := "--" + prefix
	t, s := &f.c.TLS, &f.c.SASL
	fs.BoolVar(&t.Enable, prefix+"tls", false, "connect to the brokers"+of+" with TLS, verified with the system's roots unless "+p+"tls-ca-file (on when any "+p+"tls-* flag is set)")
	fs.StringVar(&t.CAFile, prefix+"tls-ca-file", "", "PEM file of the certificate authorities that sign the brokers' certificates"+of+" (default: the system's roots)")
	fs.StringVar(&t.CertFile, prefix+"tls-cert-file", "", "PEM client certificate"+of+", for brokers that require mTLS (with "+p+"tls-key-file)")
	fs.StringVar(&t.KeyFile, prefix+"tls-key-file", "", "PEM private key of "+p+"tls-cert-file")
	fs.StringVar(&t.ServerName, prefix+"tls-server-name", "", "name the brokers' certificates"+of+" must carry (default: the host dialed)")
	fs.BoolVar(&t.InsecureSkipVerify, prefix+"tls-insecure-skip-verify", false, "UNSAFE, test clusters only: accept any broker certificate"+of+", so anyone on the path can read and change the traffic")
	fs.StringVar(&s.Mechanism, prefix+"sasl-mechanism", "", "SASL mechanism"+of+": "+strings.Join(Mechanisms[:len(Mechanisms)-1], ", ")+" or "+Mechanisms[len(Mechanisms)-1]+
		" (default: no SASL; AWS_MSK_IAM reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)")
	fs.StringVar(&s.Username, prefix+"sasl-username", "", "SASL user"+of+" (PLAIN and SCRAM)")
	fs.Var((*secretValue)(&s.Password), prefix+"sasl-password", "SASL password"+of+" (PLAIN and SCRAM); set it in the environment variable or use "+p+
		"sasl-password-file: other users of the machine can read a command line")
	fs.StringVar(&s.PasswordFile, prefix+"sasl-password-file", "", "file holding the SASL password"+of+", read on each connection")
	fs.StringVar(&s.TokenFile, prefix+"sasl-token-file", "", "file holding the OAUTHBEARER token"+of+", read on each connection so that a rotated token is picked up")
	return f
}

// Config returns the configuration the flags were given.
func (f *Flags) Config() Config { return f.c }

// Validate checks the configuration the flags were given; see
// Config.Validate. Errors are *FlagError naming the flags with their
// prefix.
func (f *Flags) Validate() error {
	_, err := f.Opts()
	return err
}

// Opts returns the kgo options of the configuration the flags were given;
// see Config.Opts. Errors are *FlagError naming the flags with their
// prefix.
func (f *Flags) Opts() ([]kgo.Opt, error) { return f.c.opts(f.prefix) }

// secretValue is the flag.Value of a Secret.
type secretValue Secret

func (v *secretValue) String() string {
	if v == nil {
		return ""
	}
	return Secret(*v).String()
}

func (v *secretValue) Set(s string) error { *v = secretValue(s); return nil }

// IsSecret tells package app (or any flag printer) to never show the
// value.
func (*secretValue) IsSecret() bool { return true }
