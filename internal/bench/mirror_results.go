package bench

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// MirrorResults is what the mirror suite measured.
type MirrorResults struct {
	Source string `json:"source"`
	Target string `json:"target"`
	// SameCluster is set when no target cluster was given with a real
	// source: the mirror then copies within one cluster, to renamed topics.
	SameCluster  bool   `json:"same_cluster"`
	TargetTopics string `json:"target_topics"` // the pattern of the target topics' names
	Partitions   int32  `json:"partitions"`
	// Records of ValueBytes (and an 8-byte key) in the source topic of the
	// throughput runs; Bytes their keys and values.
	Records    int64 `json:"records"`
	ValueBytes int   `json:"value_bytes"`
	Bytes      int64 `json:"bytes"`

	Throughput []MirrorCell    `json:"throughput,omitempty"`
	Scaling    []MirrorScale   `json:"scaling,omitempty"`
	Latency    []MirrorLatency `json:"latency,omitempty"`
}

// MirrorMeasurement is one mirror (or ceiling) throughput run: the time
// from the copiers' start until they had committed every source record.
type MirrorMeasurement struct {
	Measurement
	MBPerSec float64 `json:"mb_per_sec"` // source key and value bytes, decimal MB
	// TargetRecords is the target topic's record count read back
	// read_committed after the run; the run fails unless it equals the
	// source's.
	TargetRecords int64 `json:"target_records"`
}

// MirrorCell is one point of the mirror's throughput grid.
type MirrorCell struct {
	TxnSize        int                `json:"txn_size"`
	CommitInterval time.Duration      `json:"commit_interval_ns"`
	Mirror         *MirrorMeasurement `json:"mirror,omitempty"`
	Ceiling        *MirrorMeasurement `json:"ceiling,omitempty"`
}

// CeilingRatio returns mirror/ceiling throughput, 0 when either is missing.
func (c MirrorCell) CeilingRatio() float64 {
	if c.Mirror == nil || c.Ceiling == nil || c.Ceiling.RecordsPerSec == 0 {
		return 0
	}
	return c.Mirror.RecordsPerSec / c.Ceiling.RecordsPerSec
}

// MirrorScale is one run with several mirror instances.
type MirrorScale struct {
	Instances      int               `json:"instances"`
	TxnSize        int               `json:"txn_size"`
	CommitInterval time.Duration     `json:"commit_interval_ns"`
	Measurement    MirrorMeasurement `json:"measurement"`
}

// MirrorLatency is one end-to-end latency run: from a record's send time
// on the source to a read_committed consumer of the target receiving it.
type MirrorLatency struct {
	Copier   string        `json:"copier"`    // "mirror" or "ceiling"
	Rate     int           `json:"rate"`      // records/s offered
	PeakRate float64       `json:"peak_rate"` // the mirror's throughput it is half of, 0 when set by hand
	Achieved float64       `json:"achieved_rate"`
	Duration time.Duration `json:"duration_ns"`
	// Records sent during Warmup (before Duration) are not counted;
	// WarmupMax is their largest latency.
	Warmup         time.Duration   `json:"warmup_ns"`
	WarmupEvents   int             `json:"warmup_events"`
	WarmupMax      time.Duration   `json:"warmup_max_ns"`
	TxnSize        int             `json:"txn_size"`
	CommitInterval time.Duration   `json:"commit_interval_ns"`
	Events         int             `json:"events"`
	P50            time.Duration   `json:"p50_ns"`
	P99            time.Duration   `json:"p99_ns"`
	Max            time.Duration   `json:"max_ns"`
	Windows        []LatencyWindow `json:"windows,omitempty"`
	// Transactions the copier committed over the whole run, and the
	// records they held (warm-up included).
	Transactions int64 `json:"transactions"`
	Copied       int64 `json:"copied"`
}

// write writes the mirror suite's report.
func (mr *MirrorResults) write(b *strings.Builder, repeat int) {
	fmt.Fprintf(b, "mirror: %s\n", mr.describeTarget())
	if mr.Records > 0 {
		fmt.Fprintf(b, "input: %d records of %d bytes (8-byte key, %d-byte value) in %d partitions, %s\n",
			mr.Records, 8+mr.ValueBytes, mr.ValueBytes, mr.Partitions, mb(mr.Bytes))
	}
	if len(mr.Throughput) > 0 {
		b.WriteString("\nthroughput (input / time from the start until every record was committed to the target, then read back)")
		if repeat > 1 {
			fmt.Fprintf(b, ", median of %d runs", repeat)
		}
		b.WriteString("\n")
		writeMirrorThroughput(b, mr.Throughput)
		writeMirrorRequests(b, mr)
	}
	writeMirrorScaling(b, mr.Scaling)
	writeMirrorLatency(b, mr.Latency)
}

func writeMirrorThroughput(b *strings.Builder, cells []MirrorCell) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "txn size\tcommit\tmirror rec/s\tMB/s\tceiling rec/s\tMB/s\tmirror/ceiling\tmirror txns\taborts\t")
	var first time.Duration
	for _, c := range cells {
		ratio := "-"
		if r := c.CeilingRatio(); r > 0 {
			ratio = fmt.Sprintf("%.2f", r)
		}
		txns, aborts := "-", "-"
		if c.Mirror != nil {
			txns, aborts = fmt.Sprint(c.Mirror.Transactions), fmt.Sprint(c.Mirror.Aborted)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.TxnSize, c.CommitInterval,
			mirrorRate(c.Mirror), mirrorMB(c.Mirror), mirrorRate(c.Ceiling), mirrorMB(c.Ceiling), ratio, txns, aborts)
		for _, m := range []*MirrorMeasurement{c.Mirror, c.Ceiling} {
			if m != nil {
				first = max(first, m.FirstCommit)
			}
		}
	}
	tw.Flush()
	fmt.Fprintf(b, "  (each time includes the start, the group join and the first transaction: at most %s to the first commit)\n", round(first))
}

// writeMirrorRequests says what a transaction of each run waited on.
func writeMirrorRequests(b *strings.Builder, mr *MirrorResults) {
	var lines []string
	for _, c := range mr.Throughput {
		for _, x := range []struct {
			name string
			m    *MirrorMeasurement
		}{{"mirror", c.Mirror}, {"ceiling", c.Ceiling}} {
			if x.m == nil {
				continue
			}
			if s := requestSummary(&x.m.Measurement); s != "" {
				lines = append(lines, fmt.Sprintf("  %5d %6s %-8s %s\n", c.TxnSize, c.CommitInterval, x.name, s))
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("\nper transaction, requests sent × their mean time from write to response:\n")
	for _, l := range lines {
		b.WriteString(l)
	}
}

func writeMirrorScaling(b *strings.Builder, ss []MirrorScale) {
	if len(ss) == 0 {
		return
	}
	fmt.Fprintf(b, "\nmirror instances (txn %d, commit %s)\n", ss[0].TxnSize, ss[0].CommitInterval)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "instances\trecords/s\tMB/s\tvs 1\ttxns\taborts\t")
	for _, s := range ss {
		vs := "-"
		if ss[0].Measurement.RecordsPerSec > 0 {
			vs = fmt.Sprintf("%.2f", s.Measurement.RecordsPerSec/ss[0].Measurement.RecordsPerSec)
		}
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%s\t%d\t%d\t\n", s.Instances, thousands(s.Measurement.RecordsPerSec),
			s.Measurement.MBPerSec, vs, s.Measurement.Transactions, s.Measurement.Aborted)
	}
	tw.Flush()
}

func writeMirrorLatency(b *strings.Builder, ls []MirrorLatency) {
	if len(ls) == 0 {
		return
	}
	l0 := ls[0]
	basis := "set by hand"
	if l0.PeakRate > 0 {
		basis = fmt.Sprintf("half the mirror's %s records/s at this txn size and commit", thousands(l0.PeakRate))
	}
	fmt.Fprintf(b, "\nend-to-end latency, send time on the source to a read_committed consumer of the target, %s records/s (%s) for %s, txn %d, commit %s:\n",
		thousands(float64(l0.Rate)), basis, round(l0.Duration), l0.TxnSize, l0.CommitInterval)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "copier\tachieved/s\tp50\tp99\tmax\trecords\twarm-up max\ttxns\tp99 per fifth\t")
	for _, l := range ls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t\n", l.Copier, thousands(l.Achieved), round(l.P50), round(l.P99), round(l.Max),
			l.Events, round(l.WarmupMax), l.Transactions, windowP99s(l.Windows))
	}
	tw.Flush()
}

func mirrorRate(m *MirrorMeasurement) string {
	if m == nil {
		return "-"
	}
	return thousands(m.RecordsPerSec)
}

func mirrorMB(m *MirrorMeasurement) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", m.MBPerSec)
}
