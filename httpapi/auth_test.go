package httpapi

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/internal/testcerts"
)

// do sends GET url with the Authorization header auth (none if "") and
// returns the status, the body and the WWW-Authenticate header.
func do(t *testing.T, cl *http.Client, url, auth string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := cl.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header.Get("WWW-Authenticate")
}

// An admitted state query reaches the handler, which answers 503: no
// processor is attached.
const admitted = http.StatusServiceUnavailable

func TestStateToken(t *testing.T) {
	const token = "s3cret-token-value"
	srv := httptest.NewServer(New("g").Handler(StateToken(token)))
	defer srv.Close()
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer not-the-token", http.StatusUnauthorized},
		{"token prefix", "Bearer s3cret", http.StatusUnauthorized},
		{"token with more", "Bearer " + token + "x", http.StatusUnauthorized},
		{"basic scheme", "Basic " + token, http.StatusUnauthorized},
		{"bare token", token, http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"right token", "Bearer " + token, admitted},
		{"scheme in lower case", "bearer " + token, admitted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, challenge := do(t, srv.Client(), srv.URL+"/state/customers/c1", tc.auth)
			require.Equal(t, tc.want, status, body)
			assert.NotContains(t, body, "s3cret", "the body must not echo a token")
			if status == http.StatusUnauthorized {
				assert.Equal(t, `Bearer realm="exactly state"`, challenge)
				assert.Contains(t, body, `"error":"unauthorized: /state needs the bearer token`)
				assert.Contains(t, body, `"store":"customers"`)
			}
		})
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		status, _, _ := do(t, srv.Client(), srv.URL+path, "")
		assert.NotEqual(t, http.StatusUnauthorized, status, "%s must stay open", path)
	}
}

func TestEmptyStateTokenAdmitsNobody(t *testing.T) {
	srv := httptest.NewServer(New("g").Handler(StateToken("")))
	defer srv.Close()
	for _, auth := range []string{"", "Bearer ", "Bearer  ", "Bearer x"} {
		status, body, _ := do(t, srv.Client(), srv.URL+"/state/s/k", auth)
		require.Equal(t, http.StatusUnauthorized, status, "Authorization %q: %s", auth, body)
	}
}

func TestStateOpenByDefault(t *testing.T) {
	srv := httptest.NewServer(New("g").Handler())
	defer srv.Close()
	status, body, _ := do(t, srv.Client(), srv.URL+"/state/s/k", "")
	require.Equal(t, admitted, status, body)
}

// tlsServer serves h with TLSConfig(certs, clientCA).
func tlsServer(t *testing.T, certs *testcerts.Set, clientCA string, h http.Handler) *httptest.Server {
	t.Helper()
	cfg, err := TLSConfig(certs.ServerCert, certs.ServerKey, clientCA)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// client trusts certs' CA and presents the given client certificates.
func client(certs *testcerts.Set, own ...tls.Certificate) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool, Certificates: own}}}
}

func TestTLS(t *testing.T) {
	certs := testcerts.New(t, "httpapi")
	srv := tlsServer(t, certs, "", New("g").Handler(StateToken("tok")))
	status, body, _ := do(t, client(certs), srv.URL+"/healthz", "")
	require.Equal(t, http.StatusOK, status, body)
	status, body, _ = do(t, client(certs), srv.URL+"/state/s/k", "Bearer tok")
	require.Equal(t, admitted, status, body)

	// A client that does not trust the CA refuses the server.
	_, err := (&http.Client{}).Get(srv.URL + "/healthz")
	require.ErrorContains(t, err, "certificate")
}

func TestStateClientCerts(t *testing.T) {
	certs := testcerts.New(t, "httpapi")
	other := testcerts.New(t, "other")
	t.Run("alone", func(t *testing.T) {
		srv := tlsServer(t, certs, certs.CA, New("g").Handler(StateClientCerts()))
		status, body, challenge := do(t, client(certs), srv.URL+"/state/s/k", "")
		require.Equal(t, http.StatusUnauthorized, status, body)
		require.Empty(t, challenge, "no bearer challenge when no token is configured")
		require.Contains(t, body, "needs a client certificate")
		status, body, _ = do(t, client(certs, certs.Client(t)), srv.URL+"/state/s/k", "")
		require.Equal(t, admitted, status, body)
		// Health and metrics stay open to clients without a certificate.
		status, _, _ = do(t, client(certs), srv.URL+"/metrics", "")
		require.Equal(t, http.StatusOK, status)
		// A certificate of another CA: Go's client does not offer it
		// (the server names its CA), and /state stays closed; forced on
		// the server, it fails the handshake.
		status, _, _ = do(t, client(certs, other.Client(t)), srv.URL+"/state/s/k", "")
		require.Equal(t, http.StatusUnauthorized, status)
		foreign := other.Client(t)
		forced := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }}}}
		_, err := forced.Get(srv.URL + "/healthz")
		require.Error(t, err, "a client certificate of another CA must fail the handshake")
	})
	t.Run("or a token", func(t *testing.T) {
		srv := tlsServer(t, certs, certs.CA, New("g").Handler(StateClientCerts(), StateToken("tok")))
		status, _, _ := do(t, client(certs), srv.URL+"/state/s/k", "Bearer tok")
		require.Equal(t, admitted, status)
		status, _, _ = do(t, client(certs, certs.Client(t)), srv.URL+"/state/s/k", "")
		require.Equal(t, admitted, status)
		status, body, _ := do(t, client(certs), srv.URL+"/state/s/k", "Bearer nope")
		require.Equal(t, http.StatusUnauthorized, status)
		require.Contains(t, body, "needs a bearer token or a client certificate")
	})
	t.Run("over plain HTTP", func(t *testing.T) {
		srv := httptest.NewServer(New("g").Handler(StateClientCerts()))
		defer srv.Close()
		status, _, _ := do(t, srv.Client(), srv.URL+"/state/s/k", "")
		require.Equal(t, http.StatusUnauthorized, status)
	})
}

func TestTLSConfigErrors(t *testing.T) {
	certs := testcerts.New(t, "httpapi")
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	for _, tc := range []struct {
		name, cert, key, ca, want string
	}{
		{"missing cert", "/nonexistent/cert.pem", certs.ServerKey, "", "/nonexistent/cert.pem"},
		{"key of another cert", certs.ServerCert, certs.ClientKey, "", "private key does not match"},
		{"cert as key", certs.ServerCert, certs.ServerCert, "", "loading the certificate"},
		{"missing client CA", certs.ServerCert, certs.ServerKey, "/nonexistent/ca.pem", "client CA file"},
		{"client CA not PEM", certs.ServerCert, certs.ServerKey, notPEM, "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TLSConfig(tc.cert, tc.key, tc.ca)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
