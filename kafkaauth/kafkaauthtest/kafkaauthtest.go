// Package kafkaauthtest starts kfake clusters with TLS and SASL on, for
// tests of programs that connect through package kafkaauth. It generates
// a throwaway certificate authority, a broker certificate for 127.0.0.1
// and localhost, and a client certificate for mTLS.
package kafkaauthtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Users of the cluster Start returns: one superuser per mechanism kfake
// serves, all with Password.
const (
	PlainUser  = "plain-user"
	Scram256   = "scram256-user"
	Scram512   = "scram512-user"
	Password   = "s3cret-Pa55word-never-printed"
	ServerName = "localhost"
)

// Users maps each SASL mechanism to its user.
var Users = map[string]string{"PLAIN": PlainUser, "SCRAM-SHA-256": Scram256, "SCRAM-SHA-512": Scram512}

// Certs are PEM files in a test's temporary directory.
type Certs struct {
	CAFile         string // the CA that signs the broker and client certificates
	ClientCertFile string
	ClientKeyFile  string
	OtherCAFile    string // a CA that signed nothing here
	caCertPool     *x509.CertPool
	serverCert     tls.Certificate
}

// Cluster is a secured kfake cluster.
type Cluster struct {
	*kfake.Cluster
	Certs   Certs
	Brokers string // comma-separated
}

// Start starts a kfake cluster of n brokers with SASL (PLAIN,
// SCRAM-SHA-256 and SCRAM-SHA-512 users, see Users) and TLS on; with
// mTLS, brokers require a client certificate signed by the CA. It stops
// when the test ends.
func Start(t testing.TB, n int, mTLS bool, opts ...kfake.Opt) *Cluster {
	t.Helper()
	certs := NewCerts(t)
	tc := &tls.Config{Certificates: []tls.Certificate{certs.serverCert}, MinVersion: tls.VersionTLS12}
	if mTLS {
		tc.ClientAuth, tc.ClientCAs = tls.RequireAndVerifyClientCert, certs.caCertPool
	}
	base := []kfake.Opt{kfake.NumBrokers(n), kfake.EnableSASL(), kfake.TLS(tc)}
	for m, u := range Users {
		base = append(base, kfake.Superuser(m, u, Password))
	}
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		t.Fatalf("starting a secured kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return &Cluster{Cluster: c, Certs: certs, Brokers: strings.Join(c.ListenAddrs(), ",")}
}

// NewCerts generates a CA, a broker certificate for 127.0.0.1 and
// localhost, a client certificate, and an unrelated CA, and writes the
// files a client reads into t's temporary directory.
func NewCerts(t testing.TB) Certs {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert, caDER := newCA(t, "exactly test CA")
	_, _, otherDER := newCA(t, "unrelated CA")
	srvKey, srvDER := newLeaf(t, caKey, caCert, "broker", x509.ExtKeyUsageServerAuth)
	cliKey, cliDER := newLeaf(t, caKey, caCert, "client", x509.ExtKeyUsageClientAuth)
	c := Certs{
		CAFile:         writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER),
		OtherCAFile:    writePEM(t, dir, "other-ca.pem", "CERTIFICATE", otherDER),
		ClientCertFile: writePEM(t, dir, "client.pem", "CERTIFICATE", cliDER),
		ClientKeyFile:  writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", marshalKey(t, cliKey)),
		caCertPool:     x509.NewCertPool(),
		serverCert:     tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey},
	}
	c.caCertPool.AddCert(caCert)
	return c
}

func newCA(t testing.TB, name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("creating a CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing the CA: %v", err)
	}
	return key, cert, der
}

func newLeaf(t testing.TB, caKey *ecdsa.PrivateKey, ca *x509.Certificate, name string, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{ServerName}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("creating the %s certificate: %v", name, err)
	}
	return key, der
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating a key: %v", err)
	}
	return key
}

func marshalKey(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("marshalling a key: %v", err)
	}
	return der
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("writing %s: %v", name, err)
	}
	return path
}
