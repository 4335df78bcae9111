package chaos

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// faulter injects broker faults into the embedded kfake cluster: only
// faults an instance must get through by itself (retried by kgo, aborted
// and retried, or survived by recreating the transaction session), never
// fatal ones (fenced by a live twin, unauthorized), so that an instance
// stopping on its own is a finding.
type faulter struct {
	c *kfake.Cluster
	// kinds are the faults to draw from; nil is faultKinds.
	kinds []faultKind
	// topics are the topics produce and fetch faults aim at (the events
	// topic; the mirror's topics), topicIDs their ids: produce v13 and
	// fetch v13 name topics by id.
	topics   []string
	topicIDs [][16]byte
	// group is the group that group faults aim at (mirror mode).
	group string
	over  atomic.Bool

	mu      sync.Mutex
	handles []faultHits
}

// faultHits is one armed fault: how often it fired, and how to disarm it.
type faultHits struct {
	kind   string
	hits   func() int
	remove func()
}

// faultKind is one kind of fault; install arms it for txnID ("" any
// instance) count times.
type faultKind struct {
	name    string
	install func(f *faulter, txnID string, count int) faultHits
}

func errFault(key kmsg.Key, err *kerr.Error) func(*faulter, string, int) faultHits {
	return func(f *faulter, txnID string, count int) faultHits {
		h := f.c.Fault(kfake.Fault{Keys: []kmsg.Key{key}, TxnID: txnID, Err: err, Count: count})
		return faultHits{hits: h.Hits, remove: h.Remove}
	}
}

// topicFault fails count requests of kind key to each of the faulter's
// topics.
func topicFault(key kmsg.Key, err *kerr.Error) func(*faulter, string, int) faultHits {
	return func(f *faulter, _ string, count int) faultHits {
		var fs []kfake.Fault
		for _, t := range f.topics {
			fs = append(fs, kfake.Fault{Keys: []kmsg.Key{key}, Topic: t, Err: err, Count: count})
		}
		h := f.c.Fault(fs...)
		return faultHits{hits: h.Hits, remove: h.Remove}
	}
}

func produceFault(err *kerr.Error) func(*faulter, string, int) faultHits {
	return topicFault(kmsg.Produce, err)
}

// groupFault fails count requests of kind key of the faulter's group.
func groupFault(key kmsg.Key, err *kerr.Error) func(*faulter, string, int) faultHits {
	return func(f *faulter, _ string, count int) faultHits {
		h := f.c.Fault(kfake.Fault{Keys: []kmsg.Key{key}, Group: f.group, Err: err, Count: count})
		return faultHits{hits: h.Hits, remove: h.Remove}
	}
}

// delay holds count requests of kind key (of txnID, if set) for d: a slow
// broker. A delay longer than the transaction timeout (5 s) makes the
// instance abort and recreate its session.
func delay(key kmsg.Key, d time.Duration) func(*faulter, string, int) faultHits {
	return func(f *faulter, txnID string, count int) faultHits {
		var n atomic.Int64
		f.c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			if f.over.Load() || n.Load() >= int64(count) {
				f.c.DropControl()
				return nil, nil, false
			}
			if !f.matches(req, txnID) {
				return nil, nil, false
			}
			n.Add(1)
			// The fault is the delay itself.
			f.c.SleepControl(func() { <-time.After(d) })
			return nil, nil, false
		})
		// stop sets over; the control then drops itself.
		return faultHits{hits: func() int { return int(n.Load()) }, remove: func() {}}
	}
}

// matches reports whether req is a transactional request of txnID (any
// transactional id when empty) to one of the faulter's topics or to the
// transaction coordinator, or a fetch of one of its topics.
func (f *faulter) matches(req kmsg.Request, txnID string) bool {
	var id string
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		if r.TransactionID == nil || !slices.ContainsFunc(r.Topics, func(t kmsg.ProduceRequestTopic) bool { return f.aims(t.Topic, t.TopicID) }) {
			return false
		}
		id = *r.TransactionID
	case *kmsg.FetchRequest:
		return slices.ContainsFunc(r.Topics, func(t kmsg.FetchRequestTopic) bool { return f.aims(t.Topic, t.TopicID) })
	case *kmsg.EndTxnRequest:
		id = r.TransactionalID
	case *kmsg.TxnOffsetCommitRequest:
		id = r.TransactionalID
	default:
		return false
	}
	return txnID == "" || id == txnID
}

// aims reports whether the topic named name or id is one of the faulter's.
func (f *faulter) aims(name string, id [16]byte) bool {
	return (name != "" && slices.Contains(f.topics, name)) || (id != [16]byte{} && slices.Contains(f.topicIDs, id))
}

var faultKinds = []faultKind{
	{"EndTxn CONCURRENT_TRANSACTIONS", errFault(kmsg.EndTxn, kerr.ConcurrentTransactions)},
	{"EndTxn COORDINATOR_LOAD_IN_PROGRESS", errFault(kmsg.EndTxn, kerr.CoordinatorLoadInProgress)},
	{"EndTxn NOT_COORDINATOR", errFault(kmsg.EndTxn, kerr.NotCoordinator)},
	{"EndTxn UNKNOWN_SERVER_ERROR", errFault(kmsg.EndTxn, kerr.UnknownServerError)},
	{"EndTxn INVALID_TXN_STATE", errFault(kmsg.EndTxn, kerr.InvalidTxnState)},
	{"TxnOffsetCommit ILLEGAL_GENERATION", errFault(kmsg.TxnOffsetCommit, kerr.IllegalGeneration)},
	{"TxnOffsetCommit UNKNOWN_MEMBER_ID", errFault(kmsg.TxnOffsetCommit, kerr.UnknownMemberID)},
	{"TxnOffsetCommit COORDINATOR_NOT_AVAILABLE", errFault(kmsg.TxnOffsetCommit, kerr.CoordinatorNotAvailable)},
	{"InitProducerID COORDINATOR_LOAD_IN_PROGRESS", errFault(kmsg.InitProducerID, kerr.CoordinatorLoadInProgress)},
	{"Produce NOT_ENOUGH_REPLICAS", produceFault(kerr.NotEnoughReplicas)},
	{"Produce INVALID_PRODUCER_EPOCH", produceFault(kerr.InvalidProducerEpoch)},
	// Fenced with no twin in the group: the instance recreates its
	// session (a twin would be fatal, and the soak never starts one).
	{"Produce PRODUCER_FENCED", produceFault(kerr.ProducerFenced)},
	{"EndTxn PRODUCER_FENCED", errFault(kmsg.EndTxn, kerr.ProducerFenced)},
	{"Produce delayed 1s", delay(kmsg.Produce, time.Second)},
	// Past the transaction timeout (5 s): the records expire in the
	// processor's delivery bound, or the broker aborts the transaction
	// and bumps the epoch; either way the instance aborts and goes on.
	{"Produce delayed past the transaction timeout", delay(kmsg.Produce, 6*time.Second)},
	{"TxnOffsetCommit delayed past the transaction timeout", delay(kmsg.TxnOffsetCommit, 6*time.Second)},
	{"EndTxn delayed past the transaction timeout", delay(kmsg.EndTxn, 6*time.Second)},
}

// mirrorTargetFaultKinds are the faults of the mirror's target cluster:
// the pipeline's but those of TxnOffsetCommit, which the mirror never
// sends (its positions are records of its offsets topic).
var mirrorTargetFaultKinds = slices.DeleteFunc(slices.Clone(faultKinds), func(k faultKind) bool {
	return strings.HasPrefix(k.name, "TxnOffsetCommit")
})

// mirrorSourceFaultKinds are the faults of the mirror's source cluster, on
// its group and its fetches of the mirrored topics; never on the
// producer's transactions, whose outcome the checks must know.
var mirrorSourceFaultKinds = []faultKind{
	{"source Fetch NOT_LEADER_OR_FOLLOWER", topicFault(kmsg.Fetch, kerr.NotLeaderForPartition)},
	{"source Fetch UNKNOWN_TOPIC_OR_PARTITION", topicFault(kmsg.Fetch, kerr.UnknownTopicOrPartition)},
	{"source ListOffsets NOT_LEADER_OR_FOLLOWER", topicFault(kmsg.ListOffsets, kerr.NotLeaderForPartition)},
	{"source Fetch delayed 2s", delay(kmsg.Fetch, 2*time.Second)},
	// A heartbeat told to rejoin: a rebalance, so a revoke that dooms
	// the open transaction.
	{"source Heartbeat REBALANCE_IN_PROGRESS", groupFault(kmsg.Heartbeat, kerr.RebalanceInProgress)},
	{"source Heartbeat NOT_COORDINATOR", groupFault(kmsg.Heartbeat, kerr.NotCoordinator)},
	{"source JoinGroup COORDINATOR_LOAD_IN_PROGRESS", groupFault(kmsg.JoinGroup, kerr.CoordinatorLoadInProgress)},
	{"source SyncGroup REBALANCE_IN_PROGRESS", groupFault(kmsg.SyncGroup, kerr.RebalanceInProgress)},
	{"source OffsetFetch COORDINATOR_LOAD_IN_PROGRESS", groupFault(kmsg.OffsetFetch, kerr.CoordinatorLoadInProgress)},
}

// inject arms a random fault for txnID ("" any instance), one to three
// times.
func (f *faulter) inject(rng *rand.Rand, txnID string) string {
	kinds := f.kinds
	if kinds == nil {
		kinds = faultKinds
	}
	k := kinds[rng.IntN(len(kinds))]
	h := k.install(f, txnID, 1+rng.IntN(3))
	h.kind = k.name
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handles = append(f.handles, h)
	return k.name
}

// stop disarms every fault: armed faults that did not fire are removed,
// delays stop delaying.
func (f *faulter) stop() {
	f.over.Store(true)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.handles {
		h.remove()
	}
}

// injected counts the faults that fired, by kind.
func (f *faulter) injected() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int)
	for _, h := range f.handles {
		if n := h.hits(); n > 0 {
			out[h.kind] += n
		}
	}
	return out
}
