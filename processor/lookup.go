package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrNotOwner is wrapped by Lookup when another instance owns the key's
// partition; the *NotOwnerError says which.
var ErrNotOwner = errors.New("processor: partition not owned here")

// NotOwnerError names the partition of a looked-up key and, when the group
// says, the member that owns it (its client ID: the owner's transactional
// ID, <group>-<instance id>).
type NotOwnerError struct {
	Partition int32
	Owner     string
}

func (e *NotOwnerError) Error() string {
	owner := e.Owner
	if owner == "" {
		owner = "no member (rebalancing?)"
	}
	return fmt.Sprintf("partition %d is owned by %s", e.Partition, owner)
}

func (e *NotOwnerError) Unwrap() error { return ErrNotOwner }

// Lookup is the committed state of one key.
type Lookup struct {
	Partition int32  // the task (input partition) the key belongs to
	Value     []byte // nil when not Found
	Found     bool
	// Offset is the last input offset of the partition that the state
	// reflects (-1 before any): a caller that produced a record at offset
	// o reads its own write once Offset >= o.
	Offset int64
}

// Lookup reads key's committed state in store, from this instance if it
// owns the key's partition (restored and processing), else it fails with a
// *NotOwnerError naming the owner. Keys are partitioned like the Java
// client's default partitioner (murmur2), as the input is expected to be.
func (p *Processor) Lookup(ctx context.Context, store string, key []byte) (Lookup, error) {
	srcs := p.topo.StoreSources(store)
	n := p.parts.Load()
	if len(srcs) == 0 || n <= 0 {
		return Lookup{}, fmt.Errorf("looking up store %q: unknown store or not started", store)
	}
	part := int32(kgo.StickyKeyPartitioner(nil).ForTopic(srcs[0]).Partition(&kgo.Record{Key: key}, int(n)))
	db := p.db.Load()
	if !p.tasks.readyNow(part) || db == nil {
		return Lookup{}, &NotOwnerError{Partition: part, Owner: p.owner(ctx, srcs[0], part)}
	}
	l := Lookup{Partition: part, Offset: -1}
	// The offset first, then the value: the value is then at least as new
	// as the offset reported.
	off, ok, err := db.InputCheckpoint(inputCheckpointName(store, srcs[0]), part)
	if err != nil {
		return l, err
	}
	if ok {
		l.Offset = off
	}
	l.Value, l.Found, err = db.Get(store, part, key)
	return l, err
}

// owner asks the group which member owns topic partition part.
func (p *Processor) owner(ctx context.Context, topic string, part int32) string {
	groups, err := p.admin.DescribeGroups(ctx, p.cfg.group)
	if err != nil {
		return ""
	}
	var owner string
	for _, g := range groups {
		for _, m := range g.Members {
			if a, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range a.Topics {
					if t.Topic == topic && slices.Contains(t.Partitions, part) {
						owner = m.ClientID
					}
				}
			}
		}
	}
	return owner
}

// Ready reports whether the instance is in its group and every partition
// assigned to it is restored and processing.
func (p *Processor) Ready() bool { return p.tasks.allReady() }

// Assigned returns the input partitions assigned to this instance, sorted.
func (p *Processor) Assigned() []int32 { return p.tasks.assignedParts() }

// Lag returns, per assigned input partition, how many offsets the last
// committed transaction is behind the last stable offset the consumer saw.
// A caught-up transactional input may show 1: commit markers take offsets.
func (p *Processor) Lag() map[int32]int64 { return p.tasks.lag() }

// StateMetrics returns the local Pebble store's metrics, or nil when it is
// not open.
func (p *Processor) StateMetrics() *pebble.Metrics {
	db := p.db.Load()
	if db == nil {
		return nil
	}
	return db.Metrics()
}
