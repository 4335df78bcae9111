package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/taskrun"
)

// Global stores (topology.GlobalStore): a whole topic replicated on every
// instance, Kafka Streams' global store.
//
// Before the first session starts, every global store is read to the last
// stable offset its topic had when the read began (bootstrap); then a
// background loop follows the topics for as long as the instance runs.
// Each read batch is applied with its offsets in one Pebble batch: the
// data of a store lives in its state partition taskrun.GlobalPartition,
// and the offset of the last record applied from topic partition p is the
// checkpoint of (store, p). A restart continues after the checkpoints;
// a checkpoint the topic no longer has (the topic was recreated, or
// retention passed it) wipes the store and reads it again from the start.
//
// A global store is a replica of its topic, not state of a transaction:
// tasks read it as far as the instance has read the topic, which is not
// synchronized with their own inputs (as in Kafka Streams, where a
// GlobalKTable is not time-synchronized either). What a task wrote to its
// outputs after reading it is exactly-once like everything else.

// globalReader reads the global topics: one direct consumer, read
// committed, control records kept (a topic's end is a commit marker).
type globalReader struct {
	p      *Processor
	cl     *kgo.Client
	stores map[string][]string // topic -> the global stores replicating it
	parts  map[string]int32    // topic -> partition count
	next   map[topicPart]int64 // the next offset to apply, per topic partition
}

// bootstrapGlobals reads every global store up to its topic's end and
// returns the reader, whose follow goes on from there; nil when the
// topology has no global store, or ctx ended. It fails when a topic cannot
// be read for the restore timeout.
func (p *Processor) bootstrapGlobals(ctx context.Context) (*globalReader, error) {
	if len(p.globals) == 0 {
		return nil, nil
	}
	g := &globalReader{p: p, stores: make(map[string][]string), parts: make(map[string]int32), next: make(map[topicPart]int64)}
	for _, store := range slices.Sorted(maps.Keys(p.globals)) {
		topic := p.globals[store]
		g.stores[topic] = append(g.stores[topic], store)
	}
	topics := slices.Sorted(maps.Keys(g.stores))
	details, err := p.admin.ListTopics(ctx, topics...)
	if err == nil {
		err = details.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: global store topics %v: %w", ErrConfig, topics, err)
	}
	starts, err := p.admin.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("global store topics %v: log start: %w", topics, err)
	}
	ends, err := p.admin.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("global store topics %v: last stable offset: %w", topics, err)
	}
	from := make(map[string]map[int32]kgo.Offset)
	target := make(map[topicPart]int64)
	for _, topic := range topics {
		d, ok := details[topic]
		if !ok || len(d.Partitions) == 0 {
			return nil, fmt.Errorf("%w: global store topic %s does not exist (create it: it is read, not created)", ErrConfig, topic)
		}
		g.parts[topic] = int32(len(d.Partitions))
		if err := g.continueAt(topic, d.ID, starts, ends); err != nil {
			return nil, err
		}
		from[topic] = make(map[int32]kgo.Offset)
		for part := range g.parts[topic] {
			tp := topicPart{topic, part}
			from[topic][part] = kgo.NewOffset().At(g.next[tp])
			if e, ok := ends.Lookup(topic, part); ok {
				target[tp] = e.Offset
			}
		}
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(p.cfg.brokers...), kgo.WithLogger(p.kgoLogger()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.FetchMaxWait(p.cfg.fetchMaxWait), kgo.ConsumePartitions(from),
	}
	if g.cl, err = kgo.NewClient(append(opts, p.cfg.kgoOpts...)...); err != nil {
		return nil, fmt.Errorf("%w: creating the global store client: %w", ErrConfig, err)
	}
	began := time.Now()
	last := time.Now()
	applied := 0
	for !g.reached(target) {
		if ctx.Err() != nil {
			g.cl.Close()
			return nil, nil
		}
		n, err := g.poll(ctx)
		if err != nil {
			g.cl.Close()
			return nil, err
		}
		applied += n
		if n > 0 {
			last = time.Now()
		} else if time.Since(last) > p.cfg.restoreTimeout {
			g.cl.Close()
			return nil, fmt.Errorf("%w: bootstrapping global stores: nothing read for %s (a broker down?); at %v, want %v", ErrRestoreIncomplete, p.cfg.restoreTimeout, g.next, target)
		}
	}
	p.cfg.logger.Info("global stores bootstrapped", "stores", slices.Sorted(maps.Keys(p.globals)), "records", applied, "took", time.Since(began))
	return g, nil
}

// follow applies the global topics' new records until ctx is done, then
// closes the reader's client.
func (g *globalReader) follow(ctx context.Context) {
	defer g.cl.Close()
	for ctx.Err() == nil {
		if _, err := g.poll(ctx); err != nil && ctx.Err() == nil {
			g.p.cfg.logger.Warn("following a global store's topic", "err", err)
			sleep(ctx, time.Second)
		}
	}
}

// continueAt sets where each partition of topic continues: after its
// checkpoint, when every store replicating topic was read from this very
// topic (its topic ID, bound to the store's data partition) and each
// checkpoint lies within the topic; otherwise those stores are wiped,
// bound to the topic, and read from the log start. As for changelogs
// (restoreStart): the topic was deleted and recreated, belongs to another
// cluster, or retention or a truncation passed the checkpoint.
func (g *globalReader) continueAt(topic string, id kadm.TopicID, starts, ends kadm.ListedOffsets) error {
	db := g.p.db.Load()
	var why string
	next := make(map[int32]int64)
	for part := range g.parts[topic] {
		start, ok1 := starts.Lookup(topic, part)
		end, ok2 := ends.Lookup(topic, part)
		if !ok1 || !ok2 {
			return fmt.Errorf("global store topic %s partition %d: no offsets listed", topic, part)
		}
		next[part] = -1
		for _, store := range g.stores[topic] {
			bound, isBound, err := db.Binding(store, taskrun.GlobalPartition)
			if err != nil {
				return fmt.Errorf("%w: global store %s: %w", ErrLocalState, store, err)
			}
			cp, has, err := db.Checkpoint(store, part)
			if err != nil {
				return fmt.Errorf("%w: global store %s: %w", ErrLocalState, store, err)
			}
			switch {
			case !isBound:
				why = "not read yet"
			case string(bound) != string(id[:]):
				why = fmt.Sprintf("the topic was recreated or is another cluster's: read from topic ID %x, the topic has %x", bound, id[:])
			case has && cp+1 < start.Offset:
				why = fmt.Sprintf("partition %d: the checkpoint %d is below the log start %d", part, cp, start.Offset)
			case has && cp+1 > end.Offset:
				why = fmt.Sprintf("partition %d: the checkpoint %d is past the last stable offset %d", part, cp, end.Offset)
			}
			// Several stores of one topic: continue from the one behind;
			// applying a record again is harmless (the latest value wins).
			at := start.Offset
			if has {
				at = cp + 1
			}
			if next[part] < 0 || at < next[part] {
				next[part] = at
			}
		}
	}
	if why != "" {
		for _, store := range g.stores[topic] {
			if why != "not read yet" {
				g.p.cfg.logger.Warn("global store cannot continue from its checkpoints; wiped and read from the log start", "store", store, "topic", topic, "why", why)
			}
			parts, err := db.Partitions(store)
			if err != nil {
				return fmt.Errorf("%w: global store %s: %w", ErrLocalState, store, err)
			}
			for _, part := range parts {
				if part != taskrun.GlobalPartition {
					if err := db.WipePartition(store, part); err != nil {
						return fmt.Errorf("%w: global store %s: %w", ErrLocalState, store, err)
					}
				}
			}
			// Last: the binding says the store holds nothing of another topic.
			if err := db.ResetPartition(store, taskrun.GlobalPartition, nil, id[:]); err != nil {
				return fmt.Errorf("%w: global store %s: %w", ErrLocalState, store, err)
			}
		}
		for part := range g.parts[topic] {
			start, _ := starts.Lookup(topic, part)
			next[part] = start.Offset
		}
	}
	for part, off := range next {
		g.next[topicPart{topic, part}] = off
	}
	return nil
}

// reached reports whether every partition was applied up to target.
func (g *globalReader) reached(target map[topicPart]int64) bool {
	for tp, end := range target {
		if g.next[tp] < end {
			return false
		}
	}
	return true
}

// poll applies one poll's records: puts, deletes for null values, and the
// checkpoints, in one Pebble batch. It returns the records read.
func (g *globalReader) poll(ctx context.Context) (int, error) {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	fs := g.cl.PollFetches(pctx)
	var ferr error
	fs.EachError(func(topic string, part int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
			ferr = fmt.Errorf("reading global store topic %s partition %d: %w", topic, part, err)
		}
	})
	recs := fs.Records()
	if len(recs) == 0 {
		return 0, ferr
	}
	staged := g.p.db.Load().NewStaged()
	defer staged.Discard()
	last := make(map[topicPart]int64)
	for _, r := range recs {
		tp := topicPart{r.Topic, r.Partition}
		last[tp] = r.Offset
		if r.Attrs.IsControl() {
			continue
		}
		for _, store := range g.stores[r.Topic] {
			var err error
			if r.Value == nil {
				err = staged.Delete(store, taskrun.GlobalPartition, r.Key)
			} else {
				err = staged.Put(store, taskrun.GlobalPartition, r.Key, r.Value)
			}
			if err != nil {
				return 0, fmt.Errorf("%w: global store %s: %w", ErrLocalState, store, err)
			}
		}
	}
	for tp, off := range last {
		for _, store := range g.stores[tp.topic] {
			if err := staged.SetCheckpoint(store, tp.part, off); err != nil {
				return 0, fmt.Errorf("%w: global store %s: %w", ErrLocalState, store, err)
			}
		}
	}
	if err := staged.Apply(); err != nil {
		return 0, fmt.Errorf("%w: global stores: %w", ErrLocalState, err)
	}
	for tp, off := range last {
		g.next[tp] = off + 1
	}
	return len(recs), ferr
}
