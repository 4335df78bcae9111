package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/exactlytest"
)

// The doctor's own checks, next to admin.CheckProvisioning (topics),
// admin.CheckLag and admin.CheckTransactions.
const (
	// CheckPositions: the offsets topic cannot be read, or a position lies
	// below its source partition's log start (records deleted uncopied).
	CheckPositions = "positions"
	// CheckStuck: records wait in a source partition and its position did
	// not move during the sampling window.
	CheckStuck = "stuck"
)

// DoctorOptions tunes Doctor. The zero value is usable.
type DoctorOptions struct {
	// RenamePrefix is the mirror's rename prefix: source topic t is target
	// topic RenamePrefix+t. The default value is empty.
	RenamePrefix string
	// OffsetsTopic is the mirror's offsets topic on the target. The
	// default value is <name>-mirror-offsets.
	OffsetsTopic string
	// MaxLag is how many records may wait in one source partition before
	// the doctor warns. The default value is 10000.
	MaxLag int64
	// Sample is how long the doctor watches the positions to tell a slow
	// partition from a stuck one; 0 skips the watch (no stuck check). The
	// default value is 0.
	Sample time.Duration
	// TxnThreshold is how long one of the mirror's transactions may stay
	// open on the target before the doctor warns. The default value is
	// 30s.
	TxnThreshold time.Duration
	// ProbeLimit: a lag of at most this many offsets is counted record by
	// record with read_committed, so that commit markers and aborted
	// records are not taken for waiting records. The default value is
	// 1000.
	ProbeLimit int64
	// Timeout bounds each read of the positions and of the probes. The
	// default value is 30s.
	Timeout time.Duration
}

func (o *DoctorOptions) ensureDefaults(name string) {
	if o.OffsetsTopic == "" {
		o.OffsetsTopic = name + "-mirror-offsets"
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 10000
	}
	if o.TxnThreshold <= 0 {
		o.TxnThreshold = 30 * time.Second
	}
	if o.ProbeLimit <= 0 {
		o.ProbeLimit = 1000
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
}

// DoctorReport is Doctor's result. Its JSON form is what `exactly mirror
// doctor --json` prints.
type DoctorReport struct {
	Time   time.Time `json:"time"`   // when the doctor started
	Mirror string    `json:"mirror"` // the mirror's name
	// Severity is the highest severity of Findings, OK without findings.
	Severity admin.Severity `json:"severity"`
	// Findings are the problems found, most severe first, then by check
	// and subject.
	Findings []admin.Finding `json:"findings"`
	// Partitions are the source partitions of the mirrored topics, by
	// topic and partition.
	Partitions []PartitionHealth `json:"partitions"`
	// Group is the state of the mirror's consumer group on the source
	// (Stable, Empty, Dead...), and Members its member count.
	Group   string `json:"group_state"`
	Members int    `json:"group_members"`
	// Transactions are the open transactions of the mirror's
	// transactional IDs (<name>-...) on the target.
	Transactions []admin.Transaction `json:"transactions"`
}

// PartitionHealth is one source partition's progress.
type PartitionHealth struct {
	Topic       string `json:"topic"` // the source topic
	TargetTopic string `json:"target_topic"`
	Partition   int32  `json:"partition"`
	// LogStart and LastStable are the source partition's offsets, -1
	// when unknown.
	LogStart   int64 `json:"log_start"`
	LastStable int64 `json:"last_stable_offset"`
	// Position is the next source offset to copy as the offsets topic
	// says, -1 without one (the mirror then starts at the log start).
	Position int64 `json:"position"`
	// Sampled is the position at the start of the sampling window, -1
	// without one or without a window.
	Sampled int64 `json:"sampled_position"`
	// Lag is LastStable minus Position (minus LogStart without a
	// position), in offsets; -1 when unknown.
	Lag int64 `json:"lag"`
	// Pending is the committed records in that range, -1 when not
	// counted (a lag above ProbeLimit, or the probe did not finish).
	Pending int64 `json:"pending"`
}

// Waiting is the records still to copy: Pending when counted, else Lag.
func (p PartitionHealth) Waiting() int64 {
	if p.Pending >= 0 {
		return p.Pending
	}
	return p.Lag
}

// Doctor inspects the mirror called name, copying topics from the cluster
// of source to the cluster of target, and reports without changing
// anything:
//
//   - topics: every source topic exists; its target topic exists with the
//     same partition count (critical otherwise: the mirror refuses to
//     start); the offsets topic exists and is compacted (critical
//     otherwise: without it every partition is copied again from the
//     start, and a deleting one loses idle partitions' positions);
//   - positions: per source partition the mirrored position (ReadPositions),
//     the source's last stable offset and the lag between them; a lag of
//     more than MaxLag waiting records is a warning; a position below the
//     source's log start is critical (records deleted before they were
//     copied);
//   - stuck partitions, when Sample > 0: the positions are read again
//     after Sample; a partition with records waiting whose position did
//     not move is stuck. While some partition moved, a stuck one is a
//     warning (its owner is hung, or a rebalance is slow); when no
//     position moved at all, every stuck partition is critical: no
//     instance copies anything, and the target falls behind without
//     bound. The report names the source group's state and members;
//   - transactions: an open transaction of the mirror's transactional IDs
//     (<name>-<topic>-<partition>, or <name>-<instance id> of older
//     versions) older than TxnThreshold is a warning: it holds back the
//     last stable offset of what it wrote until its timeout or until the
//     partition's next owner fences it.
//
// source and target must be plain clients (no group, no transactional
// ID). Doctor returns an error only for a cancelled ctx; what it cannot
// read is a finding.
func Doctor(ctx context.Context, source, target *kgo.Client, name string, topics []string, o DoctorOptions) (*DoctorReport, error) {
	o.ensureDefaults(name)
	d := &doctor{src: kadm.NewClient(source), tgt: kadm.NewClient(target), source: source, target: target, o: o, r: &DoctorReport{
		Time: time.Now(), Mirror: name, Findings: []admin.Finding{}, Partitions: []PartitionHealth{}, Transactions: []admin.Transaction{},
	}}
	if len(topics) == 0 {
		d.add(admin.Warning, admin.CheckProvisioning, "topics", "no source topic to mirror: --topics is empty or --topics-regex matches none")
	}
	d.sourceTopics(ctx, topics)
	d.targetTopics(ctx, topics)
	d.positions(ctx)
	d.sourceOffsets(ctx)
	d.group(ctx, name)
	d.lagFindings()
	d.transactions(ctx, name+"/")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(d.r.Findings, func(a, b admin.Finding) int {
		if a.Severity != b.Severity {
			return int(b.Severity - a.Severity)
		}
		if c := strings.Compare(a.Check, b.Check); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
	return d.r, nil
}

// doctor is one run of Doctor.
type doctor struct {
	src, tgt       *kadm.Client
	source, target *kgo.Client
	o              DoctorOptions
	r              *DoctorReport

	counts     map[string]int32 // source topic -> partition count
	offsetsOK  bool             // the offsets topic exists
	sampled    bool             // the positions were read twice
	readFailed bool             // a positions read failed: no lag findings
}

func (d *doctor) add(sev admin.Severity, check, subject, format string, args ...any) {
	d.r.Findings = append(d.r.Findings, admin.Finding{Severity: sev, Check: check, Subject: subject, Message: fmt.Sprintf(format, args...)})
	d.r.Severity = max(d.r.Severity, sev)
}

func tpName(topic string, p int32) string { return fmt.Sprintf("%s[%d]", topic, p) }

// sourceTopics lists the source topics and fills the report's partitions.
func (d *doctor) sourceTopics(ctx context.Context, topics []string) {
	d.counts = map[string]int32{}
	if len(topics) == 0 {
		return
	}
	ds, err := d.src.ListTopics(ctx, topics...)
	if err != nil {
		d.add(admin.Critical, admin.CheckBrokers, "source", "listing the source topics: %s", err)
		return
	}
	for _, t := range topics {
		td, ok := ds[t]
		switch {
		case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			d.add(admin.Critical, admin.CheckProvisioning, t, "source topic missing: the mirror cannot copy it")
			continue
		case td.Err != nil:
			d.add(admin.Critical, admin.CheckProvisioning, t, "source topic unreadable: %s", td.Err)
			continue
		}
		d.counts[t] = int32(len(td.Partitions))
		for _, p := range td.Partitions.Sorted() {
			d.r.Partitions = append(d.r.Partitions, PartitionHealth{Topic: t, TargetTopic: d.o.RenamePrefix + t, Partition: p.Partition,
				LogStart: -1, LastStable: -1, Position: -1, Sampled: -1, Lag: -1, Pending: -1})
		}
	}
}

// targetTopics checks the target topics and the offsets topic.
func (d *doctor) targetTopics(ctx context.Context, topics []string) {
	names := []string{d.o.OffsetsTopic}
	for _, t := range topics {
		names = append(names, d.o.RenamePrefix+t)
	}
	ds, err := d.tgt.ListTopics(ctx, names...)
	if err != nil {
		d.add(admin.Critical, admin.CheckBrokers, "target", "listing the target topics: %s", err)
		return
	}
	for _, t := range topics {
		n, ok := d.counts[t]
		if !ok {
			continue // a finding of the source topic says more
		}
		name := d.o.RenamePrefix + t
		td, exists := ds[name]
		switch {
		case !exists || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			d.add(admin.Critical, admin.CheckProvisioning, name, "target topic of %s missing: a starting mirror creates it, so the mirror has not started or cannot create it", t)
		case td.Err != nil:
			d.add(admin.Critical, admin.CheckProvisioning, name, "target topic unreadable: %s", td.Err)
		case int32(len(td.Partitions)) != n:
			d.add(admin.Critical, admin.CheckProvisioning, name, "%d partitions, source topic %s has %d: partition p is copied to partition p, so the mirror refuses to start",
				len(td.Partitions), t, n)
		}
	}
	d.offsetsTopic(ctx, ds[d.o.OffsetsTopic])
}

// offsetsTopic checks that the offsets topic exists and is compacted.
func (d *doctor) offsetsTopic(ctx context.Context, td kadm.TopicDetail) {
	name := d.o.OffsetsTopic
	if td.Topic == "" || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		d.add(admin.Critical, admin.CheckProvisioning, name, "offsets topic missing: the mirror never committed, or the topic was deleted and every partition would be copied again from the start")
		return
	}
	if td.Err != nil {
		d.add(admin.Critical, admin.CheckProvisioning, name, "offsets topic unreadable: %s", td.Err)
		return
	}
	d.offsetsOK = true
	rcs, err := d.tgt.DescribeTopicConfigs(ctx, name)
	if err == nil {
		var rc kadm.ResourceConfig
		if rc, err = rcs.On(name, nil); err == nil {
			for _, c := range rc.Configs {
				if c.Key == "cleanup.policy" && c.MaybeValue() != "compact" {
					d.add(admin.Critical, admin.CheckProvisioning, name, "cleanup.policy=%s, want compact: deleting an idle partition's last position copies it again; the mirror refuses to start", c.MaybeValue())
				}
			}
			return
		}
	}
	d.add(admin.Warning, admin.CheckProvisioning, name, "describing the offsets topic's configs: %s", err)
}

// positions reads the positions, twice Sample apart when sampling.
func (d *doctor) positions(ctx context.Context) {
	if !d.offsetsOK {
		return
	}
	first, err := ReadPositions(ctx, d.target, d.o.OffsetsTopic, d.o.Timeout)
	if err != nil {
		d.readFailed = true
		d.add(admin.Critical, CheckPositions, d.o.OffsetsTopic, "%s (a transaction left open on it holds every reader back; see the transactions)", err)
		return
	}
	last := first
	if d.o.Sample > 0 {
		if !waitFor(ctx, d.o.Sample) {
			return
		}
		if last, err = ReadPositions(ctx, d.target, d.o.OffsetsTopic, d.o.Timeout); err != nil {
			d.readFailed = true
			d.add(admin.Critical, CheckPositions, d.o.OffsetsTopic, "%s", err)
			return
		}
		d.sampled = true
	}
	for i := range d.r.Partitions {
		p := &d.r.Partitions[i]
		if pos, ok := last[p.Topic][p.Partition]; ok {
			p.Position = pos
		}
		if pos, ok := first[p.Topic][p.Partition]; ok && d.sampled {
			p.Sampled = pos
		}
	}
}

// sourceOffsets lists the source partitions' log start and last stable
// offsets (after the positions: a position never exceeds them), then
// computes each lag and counts the small ones.
func (d *doctor) sourceOffsets(ctx context.Context) {
	if len(d.counts) == 0 {
		return
	}
	var topics []string
	for t := range d.counts {
		topics = append(topics, t)
	}
	starts, err1 := d.src.ListStartOffsets(ctx, topics...)
	stables, err2 := d.src.ListCommittedOffsets(ctx, topics...)
	if err := errors.Join(err1, err2); err != nil {
		d.add(admin.Warning, admin.CheckLag, "source", "listing the source offsets (results may be partial): %s", err)
	}
	probe := map[string]map[int32][2]int64{}
	for i := range d.r.Partitions {
		p := &d.r.Partitions[i]
		if o, ok := starts.Lookup(p.Topic, p.Partition); ok && o.Err == nil {
			p.LogStart = o.Offset
		}
		if o, ok := stables.Lookup(p.Topic, p.Partition); ok && o.Err == nil {
			p.LastStable = o.Offset
		}
		from := max(p.Position, p.LogStart)
		if p.LastStable < 0 || from < 0 {
			continue
		}
		p.Lag = max(0, p.LastStable-from)
		if p.Lag == 0 {
			p.Pending = 0
		} else if p.Lag <= d.o.ProbeLimit {
			if probe[p.Topic] == nil {
				probe[p.Topic] = map[int32][2]int64{}
			}
			probe[p.Topic][p.Partition] = [2]int64{from, p.LastStable}
		}
	}
	d.probe(ctx, probe)
}

// probe counts the committed records in each range, per topic.
func (d *doctor) probe(ctx context.Context, ranges map[string]map[int32][2]int64) {
	for topic, rs := range ranges {
		from, ends := map[int32]int64{}, map[int32]int64{}
		for p, r := range rs {
			from[p], ends[p] = r[0], r[1]
		}
		counts := map[int32]int64{}
		err := exactlytest.ReadCommittedFunc(ctx, d.source, topic, exactlytest.ReadOptions{From: from, Ends: ends, Timeout: d.o.Timeout},
			func(r *kgo.Record) error { counts[r.Partition]++; return nil })
		if err != nil {
			continue // Pending stays unknown: Lag counts instead
		}
		for i := range d.r.Partitions {
			if p := &d.r.Partitions[i]; p.Topic == topic {
				if _, ok := rs[p.Partition]; ok {
					p.Pending = counts[p.Partition]
				}
			}
		}
	}
}

// lagFindings grades each partition: deleted uncopied records, lag above
// MaxLag, stuck.
func (d *doctor) lagFindings() {
	if d.readFailed || !d.offsetsOK {
		return
	}
	moved := d.sampled && slices.ContainsFunc(d.r.Partitions, func(p PartitionHealth) bool { return p.Position != p.Sampled })
	for _, p := range d.r.Partitions {
		subject := tpName(p.Topic, p.Partition)
		if p.Position >= 0 && p.LogStart > p.Position {
			d.add(admin.Critical, CheckPositions, subject, "position %d is below the source's log start %d: records %d to %d were deleted before they were copied",
				p.Position, p.LogStart, p.Position, p.LogStart-1)
		}
		if w := p.Waiting(); w > d.o.MaxLag {
			d.add(admin.Warning, admin.CheckLag, subject, "%d records wait to be copied (position %s, last stable offset %d; threshold %d)", w, posString(p.Position), p.LastStable, d.o.MaxLag)
		}
		if !d.sampled || p.Waiting() <= 0 || p.Position != p.Sampled {
			continue
		}
		if moved {
			d.add(admin.Warning, CheckStuck, subject, "%d records wait and position %s did not move in %s while other partitions did: its owner may be hung, or a rebalance is slow",
				p.Waiting(), posString(p.Position), d.o.Sample)
		} else {
			d.add(admin.Critical, CheckStuck, subject, "%d records wait and no position of the mirror moved in %s: no instance copies (source group %s: %s, %d members)",
				p.Waiting(), d.o.Sample, d.r.Mirror, d.r.Group, d.r.Members)
		}
	}
}

func posString(pos int64) string {
	if pos < 0 {
		return "none"
	}
	return fmt.Sprint(pos)
}

// waitFor waits d, or returns false when ctx ends first.
func waitFor(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// group describes the mirror's consumer group on the source, which
// assigns the partitions to the instances.
func (d *doctor) group(ctx context.Context, name string) {
	d.r.Group = "Unknown"
	gs, err := d.src.DescribeGroups(ctx, name)
	if err != nil {
		return
	}
	g, ok := gs[name]
	switch {
	case ok && g.Err == nil:
		d.r.Group, d.r.Members = g.State, len(g.Members)
	case ok && errors.Is(g.Err, kerr.GroupIDNotFound):
		d.r.Group = "Dead"
	}
}

// openTxnStates are the states in which a transaction holds the last
// stable offset of what it wrote.
var openTxnStates = []string{"Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence"}

// transactions reports the mirror's transactions open on the target (by
// transactional ID prefix) and warns of those older than TxnThreshold.
func (d *doctor) transactions(ctx context.Context, prefix string) {
	listed, err := d.tgt.ListTransactions(ctx, nil, openTxnStates)
	if err != nil && len(listed) == 0 {
		d.add(admin.Warning, admin.CheckTransactions, "target", "listing transactions: %s", err)
		return
	}
	var ids []string
	for _, t := range listed.Sorted() {
		if strings.HasPrefix(t.TxnID, prefix) && slices.Contains(openTxnStates, t.State) {
			ids = append(ids, t.TxnID)
		}
	}
	if len(ids) == 0 {
		return
	}
	described, err := d.tgt.DescribeTransactions(ctx, ids...)
	if err != nil && len(described) == 0 {
		d.add(admin.Warning, admin.CheckTransactions, "target", "describing transactions: %s", err)
		return
	}
	now := time.Now()
	for _, t := range described.Sorted() {
		if t.Err != nil || !slices.Contains(openTxnStates, t.State) {
			continue // ended in between
		}
		tx := transactionOf(t, now)
		d.r.Transactions = append(d.r.Transactions, tx)
		if tx.AgeMillis >= 0 && time.Duration(tx.AgeMillis)*time.Millisecond > d.o.TxnThreshold {
			d.add(admin.Warning, admin.CheckTransactions, tx.TransactionalID,
				"open for %s (threshold %s, transaction timeout %s), producer id %d epoch %d, wrote %s: read_committed readers of those partitions wait until it times out or the partition's next owner fences it (restarting the mirror does)",
				age(tx.AgeMillis), d.o.TxnThreshold, age(tx.TimeoutMillis), tx.ProducerID, tx.ProducerEpoch, partitionsString(tx.Partitions))
		}
	}
}

func transactionOf(t kadm.DescribedTransaction, now time.Time) admin.Transaction {
	tx := admin.Transaction{
		TransactionalID: t.TxnID, ProducerID: t.ProducerID, ProducerEpoch: t.ProducerEpoch,
		State: t.State, Coordinator: t.Coordinator, TimeoutMillis: int64(t.TimeoutMillis),
		AgeMillis: -1, Partitions: map[string][]int32{},
	}
	if t.StartTimestamp > 0 {
		tx.Started = time.UnixMilli(t.StartTimestamp)
		tx.AgeMillis = max(0, now.Sub(tx.Started).Milliseconds())
	}
	t.Topics.EachPartitions(func(topic string, ps []int32) {
		slices.Sort(ps)
		tx.Partitions[topic] = ps
	})
	return tx
}

func age(ms int64) string {
	if ms < 0 {
		return "unknown time"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

// partitionsString lists partitions as "a[0] a[1] b[3]", or "nothing".
func partitionsString(ps map[string][]int32) string {
	var out []string
	for t, parts := range ps {
		for _, p := range parts {
			out = append(out, tpName(t, p))
		}
	}
	if len(out) == 0 {
		return "nothing yet"
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// WriteTo writes the report as text, as the pipeline doctor prints its
// own: the verdict, the findings, then the partitions and the open
// transactions.
func (r *DoctorReport) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "mirror doctor %s: %s at %s\n", r.Mirror, strings.ToUpper(r.Severity.String()), r.Time.Format(time.RFC3339))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	if len(r.Findings) > 0 {
		fmt.Fprintf(tw, "\nFINDINGS\nSEVERITY\tCHECK\tSUBJECT\tMESSAGE\n")
		for _, f := range r.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Severity, f.Check, f.Subject, f.Message)
		}
	}
	fmt.Fprintf(tw, "\nSOURCE GROUP %s: %s, %d members\n", r.Mirror, r.Group, r.Members)
	if len(r.Partitions) > 0 {
		fmt.Fprintf(tw, "\nPARTITIONS\nSOURCE\tTARGET\tLOG START\tLSO\tPOSITION\tSAMPLED\tLAG\tPENDING\n")
		for _, p := range r.Partitions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", tpName(p.Topic, p.Partition), tpName(p.TargetTopic, p.Partition),
				known(p.LogStart), known(p.LastStable), known(p.Position), known(p.Sampled), known(p.Lag), known(p.Pending))
		}
	}
	if len(r.Transactions) > 0 {
		fmt.Fprintf(tw, "\nOPEN TRANSACTIONS\nTRANSACTIONAL ID\tPRODUCER\tSTATE\tAGE\tTIMEOUT\tPARTITIONS\n")
		for _, t := range r.Transactions {
			fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%s\t%s\n", t.TransactionalID, t.ProducerID, t.ProducerEpoch, t.State,
				age(t.AgeMillis), age(t.TimeoutMillis), partitionsString(t.Partitions))
		}
	}
	tw.Flush()
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// known prints v, or "-" for an unknown (negative) value.
func known(v int64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprint(v)
}
