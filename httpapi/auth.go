package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// HandlerOpt configures the handler Handler returns.
type HandlerOpt interface{ apply(*handlerCfg) }

type handlerOpt func(*handlerCfg)

func (o handlerOpt) apply(c *handlerCfg) { o(c) }

type handlerCfg struct {
	token       *[sha256.Size]byte // of the /state bearer token; nil: none required
	clientCerts bool               // a verified client certificate admits to /state
}

// StateToken requires every request to /state to carry the header
// "Authorization: Bearer <token>"; a request without it or with another
// token gets 401 and a WWW-Authenticate header. The comparison takes the
// same time whatever the token given. /metrics, /healthz and /readyz stay
// open. An empty token admits nobody. By default /state is open.
//
// The token travels in clear text unless the server serves TLS (TLSConfig).
func StateToken(token string) HandlerOpt {
	sum := sha256.Sum256([]byte(token))
	empty := token == ""
	return handlerOpt(func(c *handlerCfg) {
		if empty {
			c.token = &[sha256.Size]byte{} // no token hashes to zeros: nobody passes
			return
		}
		c.token = &sum
	})
}

// StateClientCerts admits to /state a request whose TLS connection
// presented a client certificate that the server verified: the server's
// tls.Config must verify client certificates against a CA (TLSConfig with
// a client CA file does). With StateToken as well, either credential
// admits; alone, a request without a verified certificate gets 401.
func StateClientCerts() HandlerOpt {
	return handlerOpt(func(c *handlerCfg) { c.clientCerts = true })
}

// guard wraps the /state handler with the credentials cfg requires.
func (c *handlerCfg) guard(next http.Handler) http.Handler {
	if c.token == nil && !c.clientCerts {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.admits(r) {
			next.ServeHTTP(w, r)
			return
		}
		if c.token != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="exactly state"`)
		}
		resp := stateResponse{Store: r.PathValue("store"), Key: r.PathValue("key"), Offset: -1, Error: c.refusal()}
		writeJSON(w, http.StatusUnauthorized, resp)
	})
}

func (c *handlerCfg) admits(r *http.Request) bool {
	if c.clientCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	if c.token == nil {
		return false
	}
	given, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	// Hashing first makes the comparison's time independent of the
	// lengths too; the zero hash of an empty StateToken never matches.
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], c.token[:]) == 1
}

// refusal says what /state wants, never what was given.
func (c *handlerCfg) refusal() string {
	switch {
	case c.token != nil && c.clientCerts:
		return "unauthorized: /state needs a bearer token or a client certificate"
	case c.token != nil:
		return "unauthorized: /state needs the bearer token (Authorization: Bearer <token>)"
	}
	return "unauthorized: /state needs a client certificate"
}

// bearer returns the token of an Authorization header of the Bearer scheme
// (RFC 6750; the scheme name is case-insensitive).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
