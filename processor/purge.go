package processor

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// purgeInterval is how often committed repartition records are deleted.
const purgeInterval = time.Second

// purger remembers, per repartition topic partition, the offset below which
// this instance committed its consumption; purgeLoop deletes the records
// below it (Kafka DeleteRecords), off the commit path. A failed delete is
// logged and tried again with the next round: the offsets only grow.
type purger struct {
	mu      sync.Mutex
	pending map[topicPart]int64 // next offset to consume: records below are done

}

// committed records the repartition offsets a committed transaction
// consumed.
func (u *purger) committed(t *txn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for tp, off := range t.consumed {
		if !t.p.topo.IsRepartition(tp.topic) {
			continue
		}
		if u.pending == nil {
			u.pending = make(map[topicPart]int64)
		}
		u.pending[tp] = max(u.pending[tp], off+1)
	}
}

func (u *purger) take() kadm.Offsets {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.pending) == 0 {
		return nil
	}
	os := make(kadm.Offsets)
	for tp, off := range u.pending {
		os.AddOffset(tp.topic, tp.part, off, -1)
	}
	clear(u.pending)
	return os
}

// putBack returns offsets whose delete failed, unless a later commit
// already asked for more.
func (u *purger) putBack(os kadm.Offsets) {
	u.mu.Lock()
	defer u.mu.Unlock()
	os.Each(func(o kadm.Offset) {
		if u.pending == nil {
			u.pending = make(map[topicPart]int64)
		}
		tp := topicPart{o.Topic, o.Partition}
		u.pending[tp] = max(u.pending[tp], o.At)
	})
}

// purgeLoop deletes committed repartition records every purgeInterval until
// ctx ends.
func (p *Processor) purgeLoop(ctx context.Context) {
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.purgeOnce(ctx)
	}
}

func (p *Processor) purgeOnce(ctx context.Context) {
	os := p.purge.take()
	if os == nil {
		return
	}
	resps, err := p.admin.DeleteRecords(ctx, os)
	if err != nil {
		p.cfg.logger.Warn("purging repartition topics; retrying later", "err", err)
		p.purge.putBack(os)
		return
	}
	failed := make(kadm.Offsets)
	resps.Each(func(r kadm.DeleteRecordsResponse) {
		if r.Err != nil {
			p.cfg.logger.Warn("purging repartition partition; retrying later", "topic", r.Topic, "partition", r.Partition, "err", r.Err)
			if o, ok := os.Lookup(r.Topic, r.Partition); ok {
				failed.Add(o)
			}
			return
		}
		p.cfg.logger.Debug("purged repartition partition", "topic", r.Topic, "partition", r.Partition, "low_watermark", r.LowWatermark)
	})
	if len(failed) > 0 {
		p.purge.putBack(failed)
	}
}
