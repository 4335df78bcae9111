package admin

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Severity grades a finding and a whole report.
type Severity int

// Severities, from least to most severe.
const (
	// OK: nothing to do.
	OK Severity = iota
	// Warning: the pipeline runs, but something degrades it or will stop
	// it if it gets worse (an under-replicated partition, a stopped group
	// with records waiting, a broker the doctor cannot reach).
	Warning
	// Critical: the pipeline or its readers are stuck or about to lose
	// writes (an offline partition, fewer in-sync replicas than
	// min.insync.replicas, a transaction holding the last stable offset
	// back for longer than the threshold, unreachable brokers).
	Critical
)

var severityNames = []string{"ok", "warning", "critical"}

// String returns the severity's name: ok, warning or critical.
func (s Severity) String() string {
	if s < OK || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText encodes s as its name: ok, warning or critical.
func (s Severity) MarshalText() ([]byte, error) {
	if s < OK || s > Critical {
		return nil, fmt.Errorf("admin: unknown severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	i := slices.Index(severityNames, string(b))
	if i < 0 {
		return fmt.Errorf("admin: unknown severity %q", b)
	}
	*s = Severity(i)
	return nil
}

// Checks, as Finding.Check names them.
const (
	CheckBrokers      = "brokers"       // reachability, versions, protocol support
	CheckProvisioning = "topics"        // the pipeline's topics exist
	CheckReplication  = "replication"   // offline, under-replicated, at or below min ISR
	CheckTransactions = "transactions"  // transactions open longer than the threshold
	CheckStable       = "stable-offset" // last stable offset below the high watermark
	CheckGroups       = "groups"        // group state, members, committed offsets
	CheckLag          = "lag"           // records waiting for a group
	CheckACLs         = "acls"          // the principal's ACLs against what an instance needs
)

// Finding is one problem the doctor found.
type Finding struct {
	// Severity grades the problem.
	Severity Severity `json:"severity"`
	// Check is the check that found it, one of the Check constants.
	Check string `json:"check"`
	// Subject is what the finding is about: a broker, topic, partition
	// (topic[p]), group or transactional id.
	Subject string `json:"subject"`
	// Message says what is wrong and, where it is not obvious, what
	// follows from it.
	Message string `json:"message"`
}

// String formats f as "severity check subject: message".
func (f Finding) String() string {
	return fmt.Sprintf("%s %s %s: %s", f.Severity, f.Check, f.Subject, f.Message)
}

// Report is the doctor's result: what it saw and what it found. Its JSON
// form is what `exactly doctor --json` prints.
type Report struct {
	// Time is when the doctor started.
	Time time.Time `json:"time"`
	// Severity is the highest severity of Findings, OK without findings.
	Severity Severity `json:"severity"`
	// Findings are the problems found, most severe first, then by check
	// and subject.
	Findings []Finding `json:"findings"`
	// Brokers are the brokers of the cluster's metadata.
	Brokers []Broker `json:"brokers"`
	// Partitions are every partition of the pipeline's existing topics,
	// topic by topic in Pipeline.Topics order.
	Partitions []Partition `json:"partitions"`
	// Groups are the stages' consumer groups, in stage order.
	Groups []Group `json:"groups"`
	// Transactions are the open transactions that write the pipeline's
	// topics (empty when the brokers lack KIP-664).
	Transactions []Transaction `json:"transactions"`
	// ACLs is the acls check, nil when the doctor did not reach the
	// brokers.
	ACLs *ACLReport `json:"acls,omitempty"`
}

// Broker is a broker of the cluster's metadata.
type Broker struct {
	ID      int32  `json:"id"`             // node id
	Address string `json:"address"`        // host:port as the metadata advertises it
	Rack    string `json:"rack,omitempty"` // empty without a rack
	// Reachable reports whether the broker answered the doctor's API
	// versions request.
	Reachable bool `json:"reachable"`
	// Version is the best guess of the broker's Kafka version from its
	// API versions ("v4.0", "at least v3.9"...).
	Version string `json:"version,omitempty"`
	// Error is why the broker is not reachable.
	Error string `json:"error,omitempty"`
}

// Partition is a partition of one of the pipeline's topics.
type Partition struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`                     // -1 without a leader (offline)
	Replicas  []int32 `json:"replicas"`                   // assigned replicas
	ISR       []int32 `json:"isr"`                        // in-sync replicas
	Offline   []int32 `json:"offline_replicas,omitempty"` // replicas on offline log dirs or brokers
	// MinISR is the topic's min.insync.replicas, 0 when unknown.
	MinISR int `json:"min_insync_replicas"`
	// HighWatermark is the end of the log, -1 when unknown.
	HighWatermark int64 `json:"high_watermark"`
	// LastStable is the first offset of the oldest open transaction, or
	// the high watermark; -1 when unknown. read_committed consumers read
	// up to LastStable.
	LastStable int64 `json:"last_stable_offset"`
	// HeldBy is the open transaction the last stable offset waits for,
	// when LastStable < HighWatermark and the doctor could find it.
	HeldBy *Holder `json:"held_by,omitempty"`
	// Error is the partition's metadata error, if any.
	Error string `json:"error,omitempty"`
}

// Gap is how many offsets read_committed readers cannot see yet.
func (p Partition) Gap() int64 {
	if p.HighWatermark < 0 || p.LastStable < 0 {
		return 0
	}
	return p.HighWatermark - p.LastStable
}

// Holder is the producer whose open transaction holds a last stable offset.
type Holder struct {
	ProducerID    int64 `json:"producer_id"`
	ProducerEpoch int16 `json:"producer_epoch"`
	// TransactionalID is empty when no transaction coordinator knows the
	// producer (a hanging transaction in Kafka's sense).
	TransactionalID string `json:"transactional_id,omitempty"`
	// StartOffset is the first offset of its transaction in the
	// partition, -1 when unknown.
	StartOffset int64 `json:"start_offset"`
	// AgeMillis is how long the transaction has been open, -1 when unknown.
	AgeMillis int64 `json:"age_ms"`
}

// Group is one stage's consumer group.
type Group struct {
	Name string `json:"name"` // Stage.Group
	// Inputs are the stage's input topics (Stage.Inputs).
	Inputs []string `json:"inputs"`
	// State is Stable, Empty, PreparingRebalance... as the coordinator
	// says, Dead when the group does not exist, Unknown when it could not
	// be described.
	State string `json:"state"`
	// Protocol is the assignor of a classic group or of a KIP-848
	// consumer group.
	Protocol string `json:"protocol,omitempty"`
	// Members are the group's members; empty when none runs.
	Members []Member `json:"members"`
	// Lag is per partition of every input topic, input by input in the
	// order of Inputs, partitions ascending. An input that does not
	// exist has no entries (the topics check reports it).
	Lag []PartitionLag `json:"lag"`
	// TotalLag sums Pending where known, Lag elsewhere.
	TotalLag int64 `json:"total_lag"`
	// Error is what failed while describing the group or its offsets.
	Error string `json:"error,omitempty"`
}

// Member is a member of a group.
type Member struct {
	ID         string `json:"id"`                    // member id
	InstanceID string `json:"instance_id,omitempty"` // static membership id (KIP-345), if any
	ClientID   string `json:"client_id"`
	Host       string `json:"host"` // as the coordinator saw the member's connection
	// Assigned maps each of the group's inputs the member was assigned
	// partitions of to those partitions, ascending.
	Assigned map[string][]int32 `json:"assigned"`
}

// PartitionLag is a group's position in one partition of one of its
// inputs.
//
// Offsets count records and control records alike: a transaction's commit
// marker takes an offset, so a group that consumed everything of a
// transactionally written input commits one below the end. Lag is
// therefore measured to the last stable offset (what read_committed can
// read) and, when small enough, checked record by record: Pending is the
// number of committed records the group has not consumed, 0 when only
// markers and aborted records remain.
type PartitionLag struct {
	Topic     string `json:"topic"` // one of Group.Inputs
	Partition int32  `json:"partition"`
	// Committed is the group's committed offset, -1 without a commit
	// (the runtime then starts at the log start).
	Committed int64 `json:"committed"`
	// LogStart, LastStable and HighWatermark are the partition's offsets,
	// -1 when unknown.
	LogStart      int64 `json:"log_start"`
	LastStable    int64 `json:"last_stable_offset"` // see LogStart
	HighWatermark int64 `json:"high_watermark"`     // see LogStart
	// Lag is LastStable minus Committed (or minus LogStart without a
	// commit), in offsets.
	Lag int64 `json:"lag"`
	// Pending is the committed records in that range, -1 when not
	// counted (a lag above the probe limit, or the probe timed out).
	Pending int64 `json:"pending"`
	// Member is the id of the member assigned the partition, if any.
	Member string `json:"member,omitempty"`
}

// Waiting is the records the group still has to process in this partition:
// Pending when counted, else Lag.
func (l PartitionLag) Waiting() int64 {
	if l.Pending >= 0 {
		return l.Pending
	}
	return l.Lag
}

// Transaction is an open transaction that touches the pipeline.
type Transaction struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	ProducerEpoch   int16  `json:"producer_epoch"`
	// State is the coordinator's transaction state (Ongoing,
	// PrepareCommit...).
	State       string    `json:"state"`
	Coordinator int32     `json:"coordinator"` // the transaction coordinator's node id
	Started     time.Time `json:"started"`     // when the transaction began
	AgeMillis   int64     `json:"age_ms"`      // how long it has been open
	// TimeoutMillis is the producer's transaction timeout (Java
	// transaction.timeout.ms), after which the coordinator aborts it.
	TimeoutMillis int64 `json:"timeout_ms"`
	// Partitions are the partitions the transaction writes, by topic.
	Partitions map[string][]int32 `json:"partitions"`
	// HoldsBack names the partitions (topic[p]) whose last stable offset
	// this transaction holds.
	HoldsBack []string `json:"holds_back,omitempty"`
}

// add appends a finding and raises the report's severity.
func (r *Report) add(sev Severity, check, subject, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Severity: sev, Check: check, Subject: subject, Message: fmt.Sprintf(format, args...)})
	r.Severity = max(r.Severity, sev)
}

// sortFindings orders the findings most severe first, then by check and
// subject, so that output is stable.
func (r *Report) sortFindings() {
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		if a.Severity != b.Severity {
			return int(b.Severity - a.Severity)
		}
		if c := strings.Compare(a.Check, b.Check); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
}

func tp(topic string, p int32) string { return fmt.Sprintf("%s[%d]", topic, p) }
