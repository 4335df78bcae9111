package processor

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Joined inputs: time order across the topics of a task.
//
// Topics whose records reach one store (a table and the stream joined with
// it) are joined: within a task (partition p of each), their records are
// processed in timestamp order, the lowest first, so that a stream record
// meets the table as of its own timestamp and not as of whatever the
// fetches happened to return first. This is Kafka Streams' PartitionGroup
// with max.task.idle.ms (TaskIdle).
//
// A polled record is not always processed in the transaction that polled
// it: one whose turn has not come (another input of its task has nothing
// buffered and may still hold earlier records) is held. A transaction
// commits the offsets of the records it processed, not of those it polled:
// the session's TxnOffsetCommit is rewritten to them (commitProcessed), and
// once the transaction committed, each input with held records is rewound
// to its first held record (rewindHeld), so the held records are fetched
// again and nothing of them is kept across transactions. An abort rewinds
// every input to the committed offsets anyway. So state, changelog offset
// records and group offsets stay exactly what was processed (S1, E1-E5
// unchanged); holding costs only a second fetch of what was held.

// joinedTopics returns, per source topic, the topics it is joined with (its
// group, itself included, sorted), for topics that share a store with
// another topic; nil when no topic does.
func joinedTopics(sources map[string][]string) map[string][]string {
	var groups [][]string
	for _, srcs := range sources {
		if len(srcs) < 2 {
			continue
		}
		merged := slices.Clone(srcs)
		rest := groups[:0:0]
		for _, g := range groups {
			if slices.ContainsFunc(g, func(t string) bool { return slices.Contains(merged, t) }) {
				merged = append(merged, g...)
			} else {
				rest = append(rest, g)
			}
		}
		slices.Sort(merged)
		groups = append(rest, slices.Compact(merged))
	}
	if len(groups) == 0 {
		return nil
	}
	out := make(map[string][]string)
	for _, g := range groups {
		for _, t := range g {
			out[t] = g
		}
	}
	return out
}

// maxLagWait bounds how long a task waits for an input the broker says has
// committed records it has not fetched. Such records come back with the
// next fetch; what never comes is offsets without records (aborted
// transactions, markers of a producer that writes both kinds), after which
// the task goes on, and remembers it for that position (orderState.settled).
// A fetch held up by a broker failover takes seconds, so the bound is
// generous: a record that does come within it is never passed over, and
// offsets without records are rare (they cost this once per position).
const maxLagWait = 10 * time.Second

// orderState is what the loop keeps about joined inputs across
// transactions: only the loop's goroutine uses it.
type orderState struct {
	// waitSince is when a task began to wait for an input with nothing
	// buffered (for TaskIdle); a record of it clears it, as Kafka Streams
	// clears its idle deadline when the partition has data.
	waitSince map[topicPart]time.Time
	// lag is when a task began to wait for records an input has and its
	// fetches have not returned, at that (position, last stable offset):
	// a wait for another lag starts afresh.
	lag map[topicPart]lagWait
	// settled is the (position, last stable offset) at which a lag wait
	// ran out: the lag there is offsets without records.
	settled map[topicPart][2]int64
	// txnal is whether a topic's records were written in transactions:
	// then a last stable offset one past the position is the commit
	// marker of the last record, not a record.
	txnal map[string]bool
	// starts holds the log start of partitions the broker was asked for
	// (askStart).
	starts map[topicPart]int64
	// asked is when the broker was last asked a topic's last stable
	// offsets (askEnd).
	asked map[string]time.Time
	// revokes is tasks.revokes when the waits above began: a task that
	// was revoked and came back starts its waits afresh (its old wait
	// was spent while another member owned it).
	revokes int64
}

type lagWait struct {
	at    [2]int64 // position, last stable offset
	since time.Time
}

func (o *orderState) reset() {
	o.waitSince = make(map[topicPart]time.Time)
	o.lag = make(map[topicPart]lagWait)
	o.settled = make(map[topicPart][2]int64)
	o.starts = make(map[topicPart]int64)
	o.asked = make(map[string]time.Time)
	if o.txnal == nil {
		o.txnal = make(map[string]bool)
	}
}

// sync forgets the waits when partitions were revoked (or lost) since they
// began.
func (o *orderState) sync(revokes int64) {
	if revokes == o.revokes {
		return
	}
	o.revokes = revokes
	clear(o.waitSince)
	clear(o.lag)
	clear(o.settled)
}

// order is one transaction's records polled but not yet processed, per
// task and joined topic.
type order struct {
	p      *Processor
	cl     *kgo.Client
	queues map[int32]map[string][]*kgo.Record
	held   int
	polled map[topicPart]*kgo.Record // the last record polled, per joined partition
	// added is when the last record was queued: an input looks caught up
	// only by a last stable offset asked after it (ready).
	added  time.Time
	epochs map[topicPart]int32 // the leader epoch of the last record processed
}

func (p *Processor) newOrder(cl *kgo.Client) *order {
	return &order{
		p:      p,
		cl:     cl,
		queues: make(map[int32]map[string][]*kgo.Record),
		polled: make(map[topicPart]*kgo.Record),
		epochs: make(map[topicPart]int32),
	}
}

// add queues a polled record of a joined topic.
func (o *order) add(r *kgo.Record) {
	qs := o.queues[r.Partition]
	if qs == nil {
		qs = make(map[string][]*kgo.Record)
		o.queues[r.Partition] = qs
	}
	qs[r.Topic] = append(qs[r.Topic], r)
	o.held++
	tp := topicPart{r.Topic, r.Partition}
	o.polled[tp] = r
	o.added = time.Now()
	delete(o.p.order.waitSince, tp)
	delete(o.p.order.lag, tp)
	if r.ProducerID >= 0 && r.Attrs.IsTransactional() {
		o.p.order.txnal[r.Topic] = true
	}
}

// drain processes, task by task, every held record whose turn has come,
// up to the transaction's record bound: what is left stays held.
func (o *order) drain(t *txn) error {
	parts := make([]int32, 0, len(o.queues))
	for part, qs := range o.queues {
		for _, q := range qs {
			if len(q) > 0 {
				parts = append(parts, part)
				break
			}
		}
	}
	slices.Sort(parts)
	for _, part := range parts {
		qs := o.queues[part]
		for t.records < o.p.cfg.maxRecords {
			topic, ok := o.next(part, qs)
			if !ok {
				break
			}
			r := qs[topic][0]
			qs[topic] = qs[topic][1:]
			o.held--
			if err := t.process(r); err != nil {
				return err
			}
			o.epochs[topicPart{r.Topic, r.Partition}] = r.LeaderEpoch
		}
	}
	return nil
}

// next picks the topic whose head record goes next in task part: the
// lowest timestamp among the heads (ties: the first topic by name), once
// every other topic joined with it has a record buffered or may be passed
// (ready).
func (o *order) next(part int32, qs map[string][]*kgo.Record) (string, bool) {
	var best string
	var bestTS time.Time
	for topic, q := range qs {
		if len(q) == 0 {
			continue
		}
		ts := q[0].Timestamp
		if best == "" || ts.Before(bestTS) || ts.Equal(bestTS) && topic < best {
			best, bestTS = topic, ts
		}
	}
	if best == "" {
		return "", false
	}
	for _, other := range o.p.joined[best] {
		if len(qs[other]) == 0 && !o.ready(topicPart{other, part}) {
			return "", false
		}
	}
	return best, true
}

// ready reports whether a task may go on without a record of tp, which has
// none buffered: the broker holds no committed record of tp past what the
// task polled, and TaskIdle has passed since the task began to wait.
func (o *order) ready(tp topicPart) bool {
	idle := o.p.cfg.taskIdle
	if idle < 0 {
		return true
	}
	st := &o.p.order
	st.sync(o.p.tasks.revokes.Load())
	now := time.Now()
	since, waiting := st.waitSince[tp]
	if !waiting {
		since = now
		st.waitSince[tp] = since
	}
	pos, lso, known := o.position(tp)
	if known && !o.lags(tp, pos, lso) && st.asked[tp.topic].Before(o.added) {
		// Caught up by a last stable offset from before the records
		// queued: a record written before them (a customer, then its
		// order) may not be in it. Ask the broker now, after them.
		if fresh, ok := o.askEnd(tp); ok {
			lso = fresh
		}
	}
	at := [2]int64{pos, lso}
	if !known {
		at = [2]int64{-1, -1} // the broker could not say: wait as for a lag
	}
	if !known || o.lags(tp, pos, lso) && st.settled[tp] != at {
		w, ok := st.lag[tp]
		if !ok || w.at != at {
			w = lagWait{at: at, since: now}
			st.lag[tp] = w
		}
		if waited := now.Sub(w.since); waited < max(maxLagWait, idle) {
			return false
		} else if known {
			st.settled[tp] = at
			o.p.cfg.logger.Info("a joined input reports records its fetches did not return; going on without them",
				"topic", tp.topic, "partition", tp.part, "position", pos, "last_stable_offset", lso, "waited", waited)
		}
	}
	delete(st.lag, tp)
	return now.Sub(since) >= idle
}

// lags reports whether the broker holds committed records of tp past pos:
// its last stable offset is past pos, and not only by the commit marker of
// a transactional record.
func (o *order) lags(tp topicPart, pos, lso int64) bool {
	return pos < lso && !(o.p.order.txnal[tp.topic] && lso-pos == 1)
}

// position returns where the task stands in tp (the next offset after the
// last record polled, or the committed offset) and the last stable offset,
// as the fetches saw it or, when they have not said, as the broker says.
func (o *order) position(tp topicPart) (pos, lso int64, known bool) {
	lso, known = o.p.tasks.stableOf(tp)
	if r := o.polled[tp]; r != nil {
		pos = r.Offset + 1
	} else {
		pos = -1
		if off, ok := o.cl.CommittedOffsets()[tp.topic][tp.part]; ok {
			pos = off.Offset
		}
	}
	st := &o.p.order
	if pos < 0 {
		start, ok := st.starts[tp]
		if !ok {
			start, ok = o.askStart(tp)
		}
		if !ok {
			return pos, lso, false
		}
		pos = start
	}
	if !known {
		if lso, known = o.askEnd(tp); !known {
			return pos, lso, false
		}
	}
	return pos, lso, true
}

// askStart asks the broker where tp's log starts, once a session: the
// position of a partition without a committed offset of which nothing was
// polled.
func (o *order) askStart(tp topicPart) (int64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	starts, err := o.p.admin.ListStartOffsets(ctx, tp.topic)
	if err == nil {
		err = starts.Error()
	}
	s, ok := starts.Lookup(tp.topic, tp.part)
	if err != nil || !ok {
		o.p.cfg.logger.Warn("asking the log start of a joined input failed", "topic", tp.topic, "partition", tp.part, "err", err)
		return 0, false
	}
	o.p.order.starts[tp] = s.Offset
	return s.Offset, true
}

// askEnd asks the broker for tp's last stable offset when the fetches
// have not said it (nothing fetched of it yet).
func (o *order) askEnd(tp topicPart) (int64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	asked := time.Now()
	ends, err := o.p.admin.ListCommittedOffsets(ctx, tp.topic)
	if err == nil {
		err = ends.Error()
	}
	e, ok := ends.Lookup(tp.topic, tp.part)
	if err != nil || !ok {
		o.p.cfg.logger.Warn("asking the end of a joined input failed", "topic", tp.topic, "partition", tp.part, "err", err)
		return 0, false
	}
	ends.Each(func(l kadm.ListedOffset) {
		if l.Err == nil {
			o.p.tasks.sawStable(l.Topic, l.Partition, l.Offset)
		}
	})
	o.p.order.asked[tp.topic] = asked
	lso, _ := o.p.tasks.stableOf(tp)
	return max(lso, e.Offset), true
}

// commitProcessed rewrites the session's TxnOffsetCommit to the offsets of
// the records processed: a joined partition of which records were held
// commits the offset after its last processed record (or nothing, when
// none was processed). It runs where checkOffsetCommit does, before it.
func (o *order) commitProcessed(consumed map[topicPart]int64, req *kmsg.TxnOffsetCommitRequest) {
	topics := req.Topics[:0]
	for _, rt := range req.Topics {
		if o.p.joined[rt.Topic] == nil {
			topics = append(topics, rt)
			continue
		}
		parts := rt.Partitions[:0]
		for _, rp := range rt.Partitions {
			tp := topicPart{rt.Topic, rp.Partition}
			off, processed := consumed[tp]
			switch {
			case processed:
				rp.Offset = off + 1
				rp.LeaderEpoch = o.epochs[tp]
				parts = append(parts, rp)
			case o.polled[tp] == nil:
				parts = append(parts, rp) // not ours to change: checkOffsetCommit judges it
			}
		}
		if len(parts) > 0 {
			rt.Partitions = parts
			topics = append(topics, rt)
		}
	}
	req.Topics = topics
}

// rewindHeld, after a commit, points each joined partition with held
// records back at its first held record: the session has just set its
// committed and fetch offsets to what it polled. The held records are
// fetched again, and the session's committed offsets are the ones the
// transaction committed.
func (o *order) rewindHeld() {
	if o.held == 0 {
		return
	}
	to := make(map[string]map[int32]kgo.EpochOffset)
	for part, qs := range o.queues {
		for topic, q := range qs {
			if len(q) == 0 {
				continue
			}
			if to[topic] == nil {
				to[topic] = make(map[int32]kgo.EpochOffset)
			}
			to[topic][part] = kgo.EpochOffset{Epoch: q[0].LeaderEpoch, Offset: q[0].Offset}
		}
	}
	o.cl.SetOffsets(to)
}
