package dsl_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/exactly-stream/exactly/topology"
)

// TestConcurrentTasks runs one built DSL topology from several goroutines
// at once, as the processor runs one Topology for all its tasks: under
// -race this fails if an operator keeps per-record state outside the Call.
func TestConcurrentTasks(t *testing.T) {
	t.Parallel()
	top := countDSL(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rt := &nullRuntime{slot: make(map[string][]byte)}
			for i := range 200 {
				in := &topology.Input{Topic: "in", Partition: int32(g), Offset: int64(i), Key: []byte("k"), Value: []byte("v"), Timestamp: time.Unix(int64(i), 0)}
				if err := top.Dispatch(context.Background(), rt, in); err != nil {
					t.Error(err)
					return
				}
			}
			n, err := topology.Int64().Decode(rt.slot["counts"])
			assert.NoError(t, err)
			assert.Equal(t, int64(200), n)
		})
	}
	wg.Wait()
}
