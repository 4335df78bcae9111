package admin

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DoctorOptions tunes Doctor. The zero value is usable.
type DoctorOptions struct {
	// TxnThreshold is how long a transaction may stay open before the
	// doctor reports it. The default value is 30s.
	TxnThreshold time.Duration
	// MaxLag is how many waiting records of a group, over all partitions,
	// make a warning even while it has members. The default value is
	// 100000.
	MaxLag int64
	// ProbeLimit: a partition lag of at most this many offsets is checked
	// record by record with read_committed, so that commit markers and
	// aborted records are not counted as lag. The default value is 1000.
	ProbeLimit int64
	// ProbeTimeout bounds that read. The default value is 5s.
	ProbeTimeout time.Duration
	// ConnectTimeout is how long the doctor waits for the brokers' first
	// answer before it reports them unreachable. A refused connection
	// ends the wait at once; a connection whose handshake stalls ends it
	// when the client's kgo.RequestTimeoutOverhead passes (10s by
	// default), even past ConnectTimeout. The default value is 15s.
	ConnectTimeout time.Duration
	// CreateHint is the command a finding of a missing topic advises, such
	// as "wordcount topics create" for a program built on package app.
	// The default value is empty: the finding advises CreateTopics or the
	// program's `topics create` command.
	CreateHint string
	// ACLPrincipal is the principal ("User:alice") whose ACLs the acls
	// check compares with what an instance of every stage needs
	// (RequiredACLs with RoleInstance, without CREATE: the topics check
	// reports missing topics). The doctor describes the cluster's ACLs
	// for it, which takes DESCRIBE on the CLUSTER. The default value is
	// empty: the check is skipped, and ACLReport.Note says so.
	ACLPrincipal string
	// ACLGroups narrows the acls check to the stages of these groups, for
	// a principal that runs only some stages. The default value is empty:
	// every stage.
	ACLGroups []string
}

func (o *DoctorOptions) ensureDefaults() {
	if o.TxnThreshold <= 0 {
		o.TxnThreshold = 30 * time.Second
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 100000
	}
	if o.ProbeLimit <= 0 {
		o.ProbeLimit = 1000
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 5 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 15 * time.Second
	}
}

// Doctor inspects the cluster for pipeline p and reports, without
// changing anything:
//
//   - brokers: reachable, their versions, support of the transactional
//     APIs exactly-once needs (KIP-447) and the doctor uses (KIP-664);
//   - topics: the pipeline's topics exist, each stage's inputs are
//     co-partitioned, changelogs are compacted and have their input's
//     partition count, min.insync.replicas does not exceed the replication
//     factor; no partition is offline, under-replicated, at or below
//     min.insync.replicas;
//   - transactions: open longer than TxnThreshold, naming the
//     transactional id and the partitions whose last stable offset it
//     holds back; last stable offset below the high watermark, naming the
//     producer that holds it;
//   - groups: each stage's group state, members and lag per partition of
//     every input, measured to the last stable offset;
//   - acls: the ACLs of DoctorOptions.ACLPrincipal against what an
//     instance needs (RequiredACLs), each missing one a critical finding.
//
// cl must be a plain client (no group, no transactional id): the doctor
// builds a read_committed reader from its options. Doctor returns an error
// only for a cancelled ctx; a cluster it cannot reach is a critical
// finding.
func Doctor(ctx context.Context, cl *kgo.Client, p Pipeline, o DoctorOptions) (*Report, error) {
	o.ensureDefaults()
	d := &doctor{cl: cl, adm: kadm.NewClient(cl), p: p, o: o, r: &Report{
		Time: time.Now(), Findings: []Finding{}, Brokers: []Broker{}, Partitions: []Partition{}, Groups: []Group{}, Transactions: []Transaction{},
	}}
	if d.brokers(ctx) {
		d.topics(ctx)
		d.offsets(ctx)
		d.transactions(ctx)
		d.groups(ctx)
		d.acls(ctx)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.r.sortFindings()
	return d.r, nil
}

// doctor is one run of Doctor: what it read so far and its report.
type doctor struct {
	cl  *kgo.Client
	adm *kadm.Client
	p   Pipeline
	o   DoctorOptions
	r   *Report

	txnAPIs bool               // the brokers support KIP-664 (describe producers and transactions)
	exist   []string           // the pipeline's topics that exist
	parts   map[string]int     // "topic[p]" -> index in r.Partitions
	counts  map[string]int32   // topic -> partition count
	start   kadm.ListedOffsets // log start offsets
	minISR  map[string]int     // topic -> min.insync.replicas
}

// topics lists the pipeline's topics and their configs, grades what would
// stop a stage (provisioningFindings), then replication.
func (d *doctor) topics(ctx context.Context) {
	d.parts, d.counts, d.minISR = map[string]int{}, map[string]int32{}, map[string]int{}
	s, err := readTopics(ctx, d.adm, d.p.Topics())
	if err != nil {
		d.r.add(Critical, CheckProvisioning, "metadata", "reading the pipeline's topics: %s", err)
		return
	}
	d.provisioningFindings(s)
	for _, t := range d.p.Topics() {
		td, ok := s.details[t]
		if !ok || td.Err != nil {
			continue // a provisioning finding
		}
		d.exist = append(d.exist, t)
		d.counts[t] = int32(len(td.Partitions))
		d.minISR[t], _ = strconv.Atoi(s.configs[t]["min.insync.replicas"])
		for _, pd := range td.Partitions.Sorted() {
			d.parts[tp(t, pd.Partition)] = len(d.r.Partitions)
			d.r.Partitions = append(d.r.Partitions, partitionOf(pd, d.minISR[t]))
		}
	}
	replicationFindings(d.r)
}

// provisioningFindings runs the topics check with what the cluster has as
// the wanted partition counts of external inputs and no replication
// wishes, so that it reports what breaks a stage whatever the operator
// asked for at creation: a missing or unreadable topic (warning), a
// changelog not compacted or unlike its input's partition count (critical:
// the stage refuses to start, and a deleting changelog loses state), an
// output unlike its input's count (warning), min.insync.replicas above the
// replication factor (critical: every write fails).
func (d *doctor) provisioningFindings(s topicsSnapshot) {
	tr := &TopicsReport{}
	for _, t := range d.p.Topics() {
		ext := int32(0) // unknown: not compared
		if td, ok := s.details[t]; ok && td.Err == nil && d.p.inputOf(t) == t {
			ext = int32(len(td.Partitions))
		}
		tr.check(d.p, s, t, TopicsConfig{Partitions: ext}, 0)
	}
	for _, m := range tr.Mismatches {
		sev, msg := Warning, m.Message
		switch {
		case m.Kind == MismatchMissing:
			msg += ": create it with " + d.createHint()
		case m.Kind == MismatchCleanupPolicy:
			sev, msg = Critical, msg+": the stage refuses to start, and deletion would lose state"
		case m.Kind == MismatchPartitions && (d.p.IsChangelog(m.Topic) || d.p.role(m.Topic) == "input"):
			sev, msg = Critical, msg+": the stage refuses to start"
		case m.Kind == MismatchMinISR:
			sev = Critical
		}
		d.r.add(sev, CheckProvisioning, m.Topic, "%s", msg)
	}
}

// createHint says how to create a missing topic: DoctorOptions.CreateHint,
// else CreateTopics or a program's own command.
func (d *doctor) createHint() string {
	if d.o.CreateHint != "" {
		return "`" + d.o.CreateHint + "`"
	}
	return "admin.CreateTopics, or the program's `topics create` command"
}

func partitionOf(pd kadm.PartitionDetail, minISR int) Partition {
	p := Partition{
		Topic: pd.Topic, Partition: pd.Partition, Leader: pd.Leader,
		Replicas: slices.Clone(pd.Replicas), ISR: slices.Clone(pd.ISR), Offline: slices.Clone(pd.OfflineReplicas),
		MinISR: minISR, HighWatermark: -1, LastStable: -1,
	}
	if pd.Err != nil {
		p.Error = pd.Err.Error()
	}
	return p
}

// offsets lists the log start, last stable and high watermark offsets of
// every partition of the pipeline's topics.
func (d *doctor) offsets(ctx context.Context) {
	if len(d.exist) == 0 {
		return
	}
	for _, l := range []struct {
		what string
		fn   func(context.Context, ...string) (kadm.ListedOffsets, error)
		set  func(*Partition, int64)
	}{
		{"high watermarks", d.adm.ListEndOffsets, func(p *Partition, o int64) { p.HighWatermark = o }},
		{"last stable offsets", d.adm.ListCommittedOffsets, func(p *Partition, o int64) { p.LastStable = o }},
		{"log start offsets", d.adm.ListStartOffsets, nil},
	} {
		listed, err := l.fn(ctx, d.exist...)
		if err != nil && len(listed) == 0 {
			d.r.add(Warning, CheckStable, "offsets", "listing %s: %s", l.what, err)
			continue
		}
		if l.set == nil {
			d.start = listed
			continue
		}
		listed.Each(func(lo kadm.ListedOffset) {
			if i, ok := d.parts[tp(lo.Topic, lo.Partition)]; ok && lo.Err == nil {
				l.set(&d.r.Partitions[i], lo.Offset)
			}
		})
	}
}

// partition returns the pipeline's partition topic[p], if it exists.
func (d *doctor) partition(topic string, p int32) (*Partition, bool) {
	i, ok := d.parts[tp(topic, p)]
	if !ok {
		return nil, false
	}
	return &d.r.Partitions[i], true
}

func fmtAge(ms int64) string {
	if ms < 0 {
		return "unknown time"
	}
	return (time.Duration(ms) * time.Millisecond).Round(time.Millisecond).String()
}
