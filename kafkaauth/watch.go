package kafkaauth

import (
	"net"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// watch is the kgo hook Opts installs: it remembers which broker a
// connection last failed to secure, and counts the SASL exchanges a broker
// ended by hanging up (kfake, and some proxies, close the connection on
// a wrong password instead of answering SASL_AUTHENTICATION_FAILED).
type watch struct {
	config    string // Config.Describe
	mechanism string // "" without SASL

	mu struct {
		sync.Mutex
		broker  string // host:port of the last failed connect or SASL exchange
		hangups int    // SASL exchanges cut since the last request that got through
	}
}

var (
	_ kgo.HookBrokerConnect = (*watch)(nil)
	_ kgo.HookBrokerRead    = (*watch)(nil)
)

// saslHangups is how many SASL exchanges cut in a row make an
// authentication failure rather than a broker going down mid-exchange.
const saslHangups = 2

func (w *watch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.broker = addr(meta)
}

func (w *watch) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	sasl := key == int16(kmsg.SASLHandshake) || key == int16(kmsg.SASLAuthenticate)
	if !sasl && (err != nil || key == int16(kmsg.ApiVersions)) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !sasl: // a request after authentication got its answer
		w.mu.hangups = 0
	case err != nil && key == int16(kmsg.SASLAuthenticate):
		w.mu.hangups++
		w.mu.broker = addr(meta)
	default:
		w.mu.broker = addr(meta)
	}
}

// failure returns the broker last seen failing, and whether the SASL
// exchange was cut often enough to call it a refusal.
func (w *watch) failure() (broker string, refused bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.broker, w.mechanism != "" && w.mu.hangups >= saslHangups
}

// watchOf returns the watch among cl's hooks, nil if none. kgo returns
// its hooks as one value of an unexported slice type.
func watchOf(cl *kgo.Client) *watch {
	for _, v := range cl.OptValues(kgo.WithHooks) {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice {
			continue
		}
		for i := range rv.Len() {
			if w, ok := rv.Index(i).Interface().(*watch); ok {
				return w
			}
		}
	}
	return nil
}

func addr(meta kgo.BrokerMetadata) string {
	return net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
}

// Check returns an *AuthError when err, which a request of cl returned,
// is an authentication or authorization failure (IsAuthFailure), or when
// cl saw its brokers cut the SASL exchange again and again; else it
// returns nil. The error names the broker (seeds when cl does not say
// which) and the connection settings cl was built with by Opts, never a
// secret. Programs call it on a failed first request to stop at once
// instead of retrying.
func Check(cl *kgo.Client, err error, seeds string) error {
	if err == nil {
		return nil
	}
	w := watchOf(cl)
	ae := &AuthError{Config: "plaintext", Broker: seeds, Err: err}
	if w != nil {
		ae.Config = w.config
		broker, refused := w.failure()
		if broker != "" {
			ae.Broker = broker
		}
		if refused && !IsAuthFailure(err) {
			ae.Err = errClosedDuringSASL
			return ae
		}
	}
	if !IsAuthFailure(err) {
		return nil
	}
	if existing, ok := errorsAsAuth(err); ok {
		return existing
	}
	return ae
}
