package kafkaauth

import (
	"crypto/tls"
	"crypto/x509"
	"os"
)

// tlsConfig returns the *tls.Config of t, nil when TLS is off. Errors name
// the flag (under prefix) of the setting at fault.
func (c Config) tlsConfig(prefix string) (*tls.Config, error) {
	t := c.TLS
	if !t.enabled() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tlsVersion, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // named as unsafe, off by default
	if t.CAFile != "" {
		pool, err := caPool(t.CAFile)
		if err != nil {
			return nil, flagErrorf(prefix+"tls-ca-file", "%s", err)
		}
		tc.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return nil, flagErrorf(prefix+"tls-key-file", "is required with --%stls-cert-file", prefix)
	case t.KeyFile != "" && t.CertFile == "":
		return nil, flagErrorf(prefix+"tls-cert-file", "is required with --%stls-key-file", prefix)
	case t.CertFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, flagErrorf(prefix+"tls-cert-file", "loading the client certificate %s with its key %s: %s", t.CertFile, t.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// caPool reads a PEM file of CA certificates.
func caPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &noCertsError{path: path}
	}
	return pool, nil
}

type noCertsError struct{ path string }

func (e *noCertsError) Error() string { return e.path + " holds no PEM certificate" }
