// Package kfaketest holds fault helpers for tests on kfake clusters that
// more than one package uses.
package kfaketest

import (
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// HoldRequests makes c hold every request of kind key that match accepts,
// as a coordinator holds a JoinGroup during a rebalance, until release is
// called (or the test ends). held is closed once the first is held.
func HoldRequests(t testing.TB, c *kfake.Cluster, key kmsg.Key, match func(kmsg.Request) bool) (held <-chan struct{}, release func()) {
	gate := make(chan struct{})
	release = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	first := make(chan struct{})
	var once sync.Once
	c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if match(req) {
			once.Do(func() { close(first) })
			c.SleepControl(func() { <-gate })
		}
		return nil, nil, false
	})
	return first, release
}
