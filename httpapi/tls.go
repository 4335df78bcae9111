package httpapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig returns a server TLS configuration (TLS 1.2 or later) that
// serves the certificate chain in certFile with the private key in keyFile,
// both PEM. With clientCAFile (PEM, one or more CA certificates) set, it
// asks every client for a certificate and verifies one given against those
// CAs, without requiring one: /metrics and the health endpoints stay open
// to clients without a certificate, and StateClientCerts can admit to
// /state the clients that have one.
//
// The files are read once; a renewed certificate takes a restart.
func TLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the certificate %s and key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if clientCAFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the client CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("the client CA file " + clientCAFile + " holds no PEM certificate")
	}
	cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	return cfg, nil
}
