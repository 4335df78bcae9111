package runonce

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errClosed = errors.New("closed")

// Close stops a running Run and waits for it; a second Run is refused.
func TestCloseStopsRun(t *testing.T) {
	var g Guard
	g.Init()
	returned := make(chan struct{})
	started := make(chan struct{})
	go func() {
		ctx, end, err := g.Start(context.Background(), "thing", errClosed)
		if !assert.NoError(t, err) {
			close(returned)
			return
		}
		// returned closes before end: Close waits for end, so once Close
		// has returned, returned must be closed.
		defer func() {
			close(returned)
			end()
		}()
		close(started)
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // Close must wait for this
	}()
	<-started
	_, _, err := g.Start(context.Background(), "thing", errClosed)
	require.EqualError(t, err, "thing: Run called twice")
	idle := false
	g.Close(func() { idle = true })
	select {
	case <-returned:
	default:
		t.Fatal("Close returned before Run did")
	}
	require.False(t, idle, "Run ran: nothing to release for it")
	g.Close(nil) // idempotent
}

// Close before Run: idle releases what Run would have, and Run returns the
// closed error at once.
func TestCloseBeforeRun(t *testing.T) {
	var g Guard
	g.Init()
	n := 0
	g.Close(func() { n++ })
	g.Close(func() { n++ })
	require.Equal(t, 1, n)
	_, _, err := g.Start(context.Background(), "thing", errClosed)
	require.ErrorIs(t, err, errClosed)
	select {
	case <-g.Closed():
	default:
		t.Fatal("Closed not closed")
	}
}
