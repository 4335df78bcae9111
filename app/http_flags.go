package app

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"os"

	"github.com/exactly-stream/exactly/httpapi"
)

// httpConfig is how run serves its HTTP surface beyond --http-addr: TLS,
// and the credentials /state requires.
type httpConfig struct {
	tlsCert, tlsKey string
	clientCA        string
	tokenFile       string
}

// httpFlags declares the flags of the HTTP surface's security.
func httpFlags(fs *flagSet, c *httpConfig) {
	fs.StringVar(&c.tlsCert, "http-tls-cert", "", "serve --http-addr over TLS with this PEM certificate (chain) file; needs --http-tls-key")
	fs.StringVar(&c.tlsKey, "http-tls-key", "", "PEM private key file of --http-tls-cert")
	fs.StringVar(&c.clientCA, "http-client-ca", "", "PEM CA file: a client certificate it verifies admits to /state (mTLS); needs --http-tls-cert")
	fs.StringVar(&c.tokenFile, "http-state-token-file", "", "file holding the bearer token /state requires (Authorization: Bearer <token>); /metrics, /healthz and /readyz stay open")
}

// httpSetup is what serving the HTTP surface needs: the TLS configuration
// (nil: plain HTTP) and the options of httpapi's handler.
type httpSetup struct {
	tls  *tls.Config
	opts []httpapi.HandlerOpt
}

// load checks the flags against addr (the --http-addr value) and reads
// the files they name. Errors name the flag and the file, never the token.
func (c *httpConfig) load(fs *flagSet, addr string, log *slog.Logger) (httpSetup, error) {
	var s httpSetup
	for _, name := range []string{"http-tls-cert", "http-tls-key", "http-client-ca", "http-state-token-file"} {
		if addr == "" && fs.Lookup(name).Value.String() != "" {
			return s, fs.usagef(name, "needs --http-addr (or %s): there is no HTTP server without it", fs.envName("http-addr"))
		}
	}
	switch {
	case c.tlsCert != "" && c.tlsKey == "":
		return s, fs.usagef("http-tls-cert", "needs --http-tls-key (or %s)", fs.envName("http-tls-key"))
	case c.tlsKey != "" && c.tlsCert == "":
		return s, fs.usagef("http-tls-key", "needs --http-tls-cert (or %s)", fs.envName("http-tls-cert"))
	case c.clientCA != "" && c.tlsCert == "":
		return s, fs.usagef("http-client-ca", "client certificates need TLS: set --http-tls-cert and --http-tls-key")
	}
	if c.tlsCert != "" {
		cfg, err := httpapi.TLSConfig(c.tlsCert, c.tlsKey, c.clientCA)
		if err != nil {
			return s, fs.usagef("http-tls-cert", "%s", err.Error())
		}
		s.tls = cfg
	}
	if c.clientCA != "" {
		s.opts = append(s.opts, httpapi.StateClientCerts())
	}
	if c.tokenFile != "" {
		token, err := readToken(fs, c.tokenFile)
		if err != nil {
			return s, err
		}
		s.opts = append(s.opts, httpapi.StateToken(token))
		if s.tls == nil {
			log.Warn("the /state bearer token travels in clear text: serve TLS with --http-tls-cert and --http-tls-key")
		}
	}
	return s, nil
}

// readToken reads the bearer token from path: the file's content without
// surrounding white space (a trailing newline). It must not be empty.
func readToken(fs *flagSet, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// The error names the path and the cause, never the content.
		return "", fs.usagef("http-state-token-file", "%s", err.Error())
	}
	token := string(bytes.TrimSpace(b))
	if token == "" {
		return "", fs.usagef("http-state-token-file", "%s is empty: want the bearer token /state requires", path)
	}
	return token, nil
}
