package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// serve listens on addr and serves h, over TLS when tlsCfg is set, until
// stop is called, which shuts the server down. A bad address fails at
// once, naming the flag.
func serve(ctx context.Context, fs *flagSet, addr string, tlsCfg *tls.Config, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUsage, fs.origin("http-addr"), err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { // ended by stop below
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("serving metrics, health and state", "addr", ln.Addr().String(), "tls", tlsCfg != nil)
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // in-flight queries get 5s
		<-done
	}, nil
}
