package kafkaauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
)

// FlagError is a configuration that cannot work, named by the flag of
// the setting at fault (see RegisterFlags): "--sasl-username: is required
// with SASL mechanism SCRAM-SHA-512". It never holds a secret.
type FlagError struct {
	// Flag is the flag's name without dashes, prefix included:
	// "source-sasl-mechanism".
	Flag string
	// Problem says what is wrong.
	Problem string
}

func (e *FlagError) Error() string { return "--" + e.Flag + ": " + e.Problem }

func flagErrorf(flag, format string, args ...any) *FlagError {
	return &FlagError{Flag: flag, Problem: fmt.Sprintf(format, args...)}
}

// AuthError is a connection that a broker or the client refused for
// good: wrong credentials, a mechanism the broker does not enable, a
// certificate one side does not trust. Retrying cannot help.
type AuthError struct {
	// Config says how the client connected, without secrets:
	// "SASL SCRAM-SHA-512 as user orders over TLS".
	Config string
	// Broker is the broker that refused, host:port, or the seed brokers
	// when the client did not say which.
	Broker string
	// Err is what the client saw.
	Err error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("authentication failed at %s with %s: %s", e.Broker, e.Config, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// errClosedDuringSASL is what a broker that hangs up on a SASL exchange
// (instead of answering SASL_AUTHENTICATION_FAILED) leaves the client.
var errClosedDuringSASL = errors.New("the broker closed the connection during SASL authentication (wrong user or password, or a mechanism it does not enable)")

// IsAuthFailure reports whether err is a failure that retrying cannot
// mend: an *AuthError, a SASL error of the broker (authentication failed,
// unsupported mechanism), an authorization error, or a TLS certificate
// the client or the broker refused.
func IsAuthFailure(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*AuthError](err); ok {
		return true
	}
	for _, k := range []error{kerr.SaslAuthenticationFailed, kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState,
		kerr.ClusterAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed,
		kerr.TransactionalIDAuthorizationFailed, kerr.DelegationTokenAuthorizationFailed} {
		if errors.Is(err, k) {
			return true
		}
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		notTLS    tls.RecordHeaderError
		op        *net.OpError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &notTLS) ||
		// crypto/tls reports an alert of the broker (a missing or bad
		// client certificate, no common version or cipher) as a net.OpError
		// with this Op around an unexported alert type.
		errors.As(err, &op) && op.Op == "remote error"
}

func errorsAsAuth(err error) (*AuthError, bool) { return errors.AsType[*AuthError](err) }
