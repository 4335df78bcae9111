package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/wordcount"
	"github.com/exactly-stream/exactly/internal/testcerts"
)

const secret = "s3cret-bearer-token"

// writeFile writes content into a new file of t's temp dir.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// TestHTTPFlagErrors: each wrong combination or file of the HTTP
// security flags fails at once (before any broker is asked) as a usage
// error naming the flag, and no error shows a token.
func TestHTTPFlagErrors(t *testing.T) {
	t.Parallel()
	certs := testcerts.New(t, "app")
	token := writeFile(t, "token", secret+"\n")
	empty := writeFile(t, "empty", " \n")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"cert without key":   {[]string{"--http-addr", ":0", "--http-tls-cert", certs.ServerCert}, "--http-tls-cert: needs --http-tls-key (or WC_HTTP_TLS_KEY)"},
		"key without cert":   {[]string{"--http-addr", ":0", "--http-tls-key", certs.ServerKey}, "--http-tls-key: needs --http-tls-cert (or WC_HTTP_TLS_CERT)"},
		"client CA, no TLS":  {[]string{"--http-addr", ":0", "--http-client-ca", certs.CA}, "--http-client-ca: client certificates need TLS"},
		"token, no address":  {[]string{"--http-state-token-file", token}, "--http-state-token-file: needs --http-addr (or WC_HTTP_ADDR)"},
		"cert, no address":   {[]string{"--http-tls-cert", certs.ServerCert, "--http-tls-key", certs.ServerKey}, "--http-tls-cert: needs --http-addr"},
		"missing token file": {[]string{"--http-addr", ":0", "--http-state-token-file", "/nonexistent/token"}, "--http-state-token-file: open /nonexistent/token: no such file or directory"},
		"empty token file":   {[]string{"--http-addr", ":0", "--http-state-token-file", empty}, "--http-state-token-file: " + empty + " is empty"},
		"token file as cert": {[]string{"--http-addr", ":0", "--http-tls-cert", token, "--http-tls-key", certs.ServerKey}, "--http-tls-cert: loading the certificate " + token},
		"token file as key":  {[]string{"--http-addr", ":0", "--http-tls-cert", certs.ServerCert, "--http-tls-key", token}, "--http-tls-cert: loading the certificate"},
		"key of another":     {[]string{"--http-addr", ":0", "--http-tls-cert", certs.ServerCert, "--http-tls-key", certs.ClientKey}, "private key does not match"},
		"token file as CA":   {[]string{"--http-addr", ":0", "--http-tls-cert", certs.ServerCert, "--http-tls-key", certs.ServerKey, "--http-client-ca", token}, "holds no PEM certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "state")
			args := append([]string{"run", "--brokers", "127.0.0.1:1", "--state-dir", dir, "--connect-timeout", "5s"}, tc.args...)
			_, stderr, err := runApp(testConfig(), args...)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, ExitUsage, ExitCode(err), err.Error())
			require.NotContains(t, err.Error(), secret)
			require.NotContains(t, stderr, secret)
			require.NoDirExists(t, dir)
		})
	}
}

func TestHTTPFlagsInHelp(t *testing.T) {
	t.Parallel()
	out, _, err := runApp(testConfig(), "run", "--help")
	require.NoError(t, err)
	for _, s := range []string{"--http-tls-cert string  (env WC_HTTP_TLS_CERT)", "--http-tls-key string  (env WC_HTTP_TLS_KEY)",
		"--http-client-ca string  (env WC_HTTP_CLIENT_CA)", "--http-state-token-file string  (env WC_HTTP_STATE_TOKEN_FILE)",
		"--static-membership  (env WC_STATIC_MEMBERSHIP)", "--leave-group-on-stop  (env WC_LEAVE_GROUP_ON_STOP)"} {
		require.Contains(t, out, s)
	}
}

// syncBuffer is a bytes.Buffer safe for the kit's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestRunServesTLSAndGuardsState runs an instance with TLS, a client CA
// and a token file (given by environment variable): health and metrics
// answer over TLS without credentials, /state wants the token or a client
// certificate, and the token is in no log line.
func TestRunServesTLSAndGuardsState(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = adm.CreateTopic(ctx, 2, 1, nil, wordcount.TopicLines)
	require.NoError(t, err)

	certs := testcerts.New(t, "app")
	t.Setenv("WC_HTTP_STATE_TOKEN_FILE", writeFile(t, "token", secret+"\n"))
	addr := freeAddr(t)
	var stderr syncBuffer
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- testConfig().Run(runCtx, []string{"run", "--brokers", brokers, "--state-dir", t.TempDir(), "--instance-id", "i1",
			"--http-addr", addr, "--http-tls-cert", certs.ServerCert, "--http-tls-key", certs.ServerKey, "--http-client-ca", certs.CA,
			"--log-level", "debug"}, &bytes.Buffer{}, &stderr)
	}()
	base := "https://" + addr
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool}}}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool, Certificates: []tls.Certificate{certs.Client(t)}}}}
	get := func(cl *http.Client, path, token string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := cl.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for get(plain, "/readyz", "") != http.StatusOK {
		select {
		case err := <-done:
			t.Fatalf("run stopped: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.Equal(t, http.StatusOK, get(plain, "/healthz", ""))
	require.Equal(t, http.StatusOK, get(plain, "/metrics", ""))
	require.Equal(t, http.StatusUnauthorized, get(plain, "/state/words/doc", ""))
	require.Equal(t, http.StatusUnauthorized, get(plain, "/state/words/doc", "wrong"))
	require.Equal(t, http.StatusOK, get(plain, "/state/words/doc", secret))
	require.Equal(t, http.StatusOK, get(withCert, "/state/words/doc", ""))

	stop()
	require.NoError(t, <-done)
	require.NotContains(t, stderr.String(), secret)
	require.Contains(t, stderr.String(), `tls=true`)
}

// TestMembershipFlags: the instance joins as a static member named by its
// instance ID unless --static-membership=false, and a clean stop leaves
// the group unless --leave-group-on-stop=false.
func TestMembershipFlags(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		flags      []string
		instanceID string // of the member; "" for a dynamic one
		stays      bool   // the member is still there after the stop
	}{
		"default":            {nil, "i1", false},
		"staying on stop":    {[]string{"--leave-group-on-stop=false"}, "i1", true},
		"dynamic":            {[]string{"--static-membership=false"}, "", false},
		"dynamic, stay flag": {[]string{"--static-membership=false", "--leave-group-on-stop=false"}, "", false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
			require.NoError(t, err)
			defer cluster.Close()
			cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
			require.NoError(t, err)
			defer cl.Close()
			adm := kadm.NewClient(cl)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err = adm.CreateTopic(ctx, 1, 1, nil, wordcount.TopicLines)
			require.NoError(t, err)
			members := func() []kadm.DescribedGroupMember {
				groups, err := adm.DescribeGroups(ctx, wordcount.Group)
				require.NoError(t, err)
				return groups[wordcount.Group].Members
			}
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				args := []string{"run", "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--state-dir", t.TempDir(),
					"--instance-id", "i1", "--log-level", "error"}
				done <- testConfig().Run(runCtx, append(args, tc.flags...), &bytes.Buffer{}, &bytes.Buffer{})
			}()
			var joined []kadm.DescribedGroupMember
			for len(joined) == 0 {
				select {
				case err := <-done:
					t.Fatalf("run stopped: %v", err)
				case <-time.After(50 * time.Millisecond):
				}
				joined = members()
			}
			require.Len(t, joined, 1)
			if tc.instanceID == "" {
				require.Nil(t, joined[0].InstanceID, "a dynamic member has no instance ID: member "+strconv.Quote(joined[0].MemberID))
			} else {
				require.NotNil(t, joined[0].InstanceID, "a static member")
				require.Equal(t, tc.instanceID, *joined[0].InstanceID)
			}
			stop()
			require.NoError(t, <-done)
			if tc.stays {
				require.Len(t, members(), 1, "the static member stays in the group after a clean stop")
			} else {
				require.Empty(t, members(), "the member left the group on a clean stop")
			}
		})
	}
}
