package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Results is everything one Run measured. Durations are in nanoseconds in
// JSON (fields named *_ns).
type Results struct {
	Machine Machine `json:"machine"`
	Setup   Setup   `json:"setup"`

	Throughput []Cell   `json:"throughput,omitempty"`
	Latency    *Latency `json:"latency,omitempty"`
	Restore    *Restore `json:"restore,omitempty"`
	RSS        *RSS     `json:"rss,omitempty"`
	Scaling    []Scale  `json:"scaling,omitempty"`
	// Peer holds the side-by-side runs with Config.Peer (peer.go).
	Peer    []PeerCell `json:"peer,omitempty"`
	Targets []Target   `json:"targets,omitempty"`
	// Mirror holds the mirror suite's figures (Config.Suite).
	Mirror  *MirrorResults `json:"mirror,omitempty"`
	Elapsed time.Duration  `json:"elapsed_ns"`
}

// Machine describes where the figures were taken and under what load.
type Machine struct {
	CPUs       int        `json:"cpus"`
	GOMAXPROCS int        `json:"gomaxprocs"`
	CPUModel   string     `json:"cpu_model"`
	MemoryMiB  int64      `json:"memory_mib"`
	GoVersion  string     `json:"go_version"`
	LoadBefore [3]float64 `json:"load_before"`
	LoadAfter  [3]float64 `json:"load_after"`
	Started    time.Time  `json:"started"`
}

// Setup describes the cluster and the input.
type Setup struct {
	Cluster    string `json:"cluster"`
	Partitions int32  `json:"partitions"`
	Loops      int    `json:"loops,omitempty"` // transaction loops per exactly instance
	Orders     int64  `json:"orders"`
	Customers  int    `json:"customers"`
	Seed       int64  `json:"seed"`
	// EventBytes and ChangelogBytes are the value bytes the pipeline
	// produces for the whole input, ChangelogBytes over the changelogs of
	// both stores; the ceiling produces the same.
	EventBytes     int64 `json:"event_bytes"`
	ChangelogBytes int64 `json:"changelog_bytes"`
	// Repeat is how many times each throughput figure was measured; the
	// median is reported.
	Repeat int `json:"repeat"`
}

// Measurement is one throughput run.
type Measurement struct {
	Records       int64         `json:"records"` // input records committed
	Elapsed       time.Duration `json:"elapsed_ns"`
	RecordsPerSec float64       `json:"records_per_sec"`
	// FirstCommit is the time from the start to the first commit: joining
	// the group and the first transaction (or batch). It is part of
	// Elapsed.
	FirstCommit  time.Duration `json:"first_commit_ns"`
	Transactions int64         `json:"transactions"` // committed transactions (batches at least once)
	Aborted      int64         `json:"aborted"`
	// Runs holds the rate of every run when the measurement was repeated
	// (Config.Repeat); the figures above are those of the median run.
	Runs []float64 `json:"runs,omitempty"`
	// Requests sums the requests of the run's clients by Kafka API, for
	// where a transaction's time goes (requestSummary).
	Requests map[string]RequestStat `json:"requests,omitempty"`
	// TxnTime sums the committed transactions' durations (Begin to the
	// local state applied) and Ending the part of them spent ending
	// (flush, offset commit, EndTxn: processor.TxnInfo.Ending), summed
	// over the loops of every instance; the pipeline only.
	TxnTime time.Duration `json:"txn_time_ns,omitempty"`
	Ending  time.Duration `json:"ending_ns,omitempty"`
}

// EndingShare returns the share of its transactions' time a pipeline's
// loops spent ending them, waiting on the broker; 0 when not measured.
func (m Measurement) EndingShare() float64 {
	if m.TxnTime <= 0 {
		return 0
	}
	return float64(m.Ending) / float64(m.TxnTime)
}

// Cell is one point of the throughput grid.
type Cell struct {
	TxnSize        int           `json:"txn_size"`
	CommitInterval time.Duration `json:"commit_interval_ns"`
	Pipeline       *Measurement  `json:"pipeline,omitempty"`
	Ceiling        *Measurement  `json:"ceiling,omitempty"`
	AtLeastOnce    *Measurement  `json:"at_least_once,omitempty"`
}

// CeilingRatio returns pipeline/ceiling throughput, 0 when either is
// missing.
func (c Cell) CeilingRatio() float64 {
	if c.Pipeline == nil || c.Ceiling == nil || c.Ceiling.RecordsPerSec == 0 {
		return 0
	}
	return c.Pipeline.RecordsPerSec / c.Ceiling.RecordsPerSec
}

// Overhead returns the exactly-once overhead 1 - eos/alo, and whether both
// were measured.
func (c Cell) Overhead() (float64, bool) {
	if c.Pipeline == nil || c.AtLeastOnce == nil || c.AtLeastOnce.RecordsPerSec == 0 {
		return 0, false
	}
	return 1 - c.Pipeline.RecordsPerSec/c.AtLeastOnce.RecordsPerSec, true
}

// Latency is the end-to-end latency run.
type Latency struct {
	Rate     int           `json:"rate"`      // orders/s asked for
	PeakRate float64       `json:"peak_rate"` // the peak it is half of, 0 when set by hand
	Achieved float64       `json:"achieved_rate"`
	Duration time.Duration `json:"duration_ns"`
	// Warmup is how long orders were produced before Duration; their
	// WarmupEvents are not counted, WarmupMax is their largest latency.
	Warmup         time.Duration `json:"warmup_ns"`
	WarmupEvents   int           `json:"warmup_events"`
	WarmupMax      time.Duration `json:"warmup_max_ns"`
	Customers      int           `json:"customers"` // as many orders per customer as the throughput input
	TxnSize        int           `json:"txn_size"`
	CommitInterval time.Duration `json:"commit_interval_ns"`
	Events         int           `json:"events"`
	P50            time.Duration `json:"p50_ns"`
	P99            time.Duration `json:"p99_ns"`
	Max            time.Duration `json:"max_ns"`
	// Windows splits the run into equal windows of produce time.
	Windows []LatencyWindow `json:"windows,omitempty"`
	// Transactions committed by the instance during the run, and the p99
	// and max of their durations (Begin to local state applied).
	Transactions int           `json:"transactions"`
	TxnP99       time.Duration `json:"txn_p99_ns"`
	TxnMax       time.Duration `json:"txn_max_ns"`
}

// LatencyWindow holds the latencies of the orders produced in one window
// of the latency run.
type LatencyWindow struct {
	From     time.Duration `json:"from_ns"` // since the first order
	Duration time.Duration `json:"duration_ns"`
	Events   int           `json:"events"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
}

// windowP99s lists the p99 of each window.
func (l *Latency) windowP99s() string { return windowP99s(l.Windows) }

func windowP99s(ws []LatencyWindow) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = round(w.P99).String()
	}
	return strings.Join(s, " ")
}

// Restore is the restore run.
type Restore struct {
	Customers int         `json:"customers"`
	Fill      Measurement `json:"fill"` // the pipeline run that wrote the changelog
	// FromEmpty and FromCheckpoint restore into an empty state directory
	// and into the directory the first restore left.
	FromEmpty      RestoreRun `json:"from_empty"`
	FromCheckpoint RestoreRun `json:"from_checkpoint"`
	// FetchOnly reads the same changelogs with nothing applied: what the
	// fetch alone allows a restore.
	FetchOnly *FetchOnly `json:"fetch_only,omitempty"`
}

// RestoreRun is one restore of every partition by one instance.
type RestoreRun struct {
	Records int64 `json:"records"` // changelog records applied
	// Restoring is the time spent restoring (the sum over partitions,
	// which restore one after another); Ready is the time from the start
	// of the instance until every partition was restored.
	Restoring     time.Duration `json:"restoring_ns"`
	Ready         time.Duration `json:"ready_ns"`
	RecordsPerSec float64       `json:"records_per_sec"`
}

// RSS is the peak resident set of an `exactly run` child process that
// restored RestoreCustomers customers from an empty directory and then
// processed Orders more orders.
type RSS struct {
	Customers int           `json:"customers"`
	Orders    int           `json:"orders"`
	PeakBytes int64         `json:"peak_bytes"` // VmHWM
	Ready     time.Duration `json:"ready_ns"`   // start to the orders committed
}

// Scale is one scaling run.
type Scale struct {
	Instances      int           `json:"instances"`
	TxnSize        int           `json:"txn_size"`
	CommitInterval time.Duration `json:"commit_interval_ns"`
	Measurement    Measurement   `json:"measurement"`
}

// Target is one target of the benchmarks issue checked against the
// figures.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// WriteTable writes the human-readable report.
func (r *Results) WriteTable(w io.Writer) error {
	var b strings.Builder
	m, s := r.Machine, r.Setup
	fmt.Fprintf(&b, "exactly bench, %s\n", m.Started.Format(time.RFC3339))
	fmt.Fprintf(&b, "machine: %d CPUs (GOMAXPROCS %d), %s, %d MiB, %s; load average %.2f before, %.2f after\n",
		m.CPUs, m.GOMAXPROCS, m.CPUModel, m.MemoryMiB, m.GoVersion, m.LoadBefore[0], m.LoadAfter[0])
	if r.Mirror != nil {
		r.Mirror.write(&b, s.Repeat)
		fmt.Fprintf(&b, "\ntotal time %s\n", round(r.Elapsed))
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "cluster: %s; %d partitions", s.Cluster, s.Partitions)
	if s.Loops > 1 {
		fmt.Fprintf(&b, "; %d transaction loops per exactly instance, as many bare loops in the ceiling", s.Loops)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "input: %d orders over %d customers (seed %d), 0 malformed, 0 duplicates", s.Orders, s.Customers, s.Seed)
	if s.EventBytes > 0 {
		fmt.Fprintf(&b, "; the pipeline produces %s of event and %s of changelog values for it", mb(s.EventBytes), mb(s.ChangelogBytes))
	}
	b.WriteString("\n")
	if len(r.Throughput) > 0 {
		b.WriteString("\nthroughput, input records/s (input / time from start until the group committed all of it)")
		if s.Repeat > 1 {
			fmt.Fprintf(&b, ", median of %d runs", s.Repeat)
		}
		b.WriteString("\n")
		writeThroughput(&b, r.Throughput)
		writeRequests(&b, r.Throughput)
	}
	writeLatency(&b, r.Latency)
	writeRestore(&b, r.Restore)
	if r.RSS != nil {
		fmt.Fprintf(&b, "\npeak RSS of `exactly run` restoring %d customers from an empty state dir, then processing %d orders: %s (VmHWM), ready in %s\n",
			r.RSS.Customers, r.RSS.Orders, mb(r.RSS.PeakBytes), round(r.RSS.Ready))
	}
	writeScaling(&b, r.Scaling)
	writePeer(&b, r.Peer)
	writeTargets(&b, r.Targets)
	fmt.Fprintf(&b, "\ntotal time %s\n", round(r.Elapsed))
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRequests says, per run of the grid, what a transaction (batch)
// waited on: the requests of each kind it sent and their mean time.
func writeRequests(b *strings.Builder, cells []Cell) {
	var lines []string
	for _, c := range cells {
		for _, x := range []struct {
			name string
			m    *Measurement
		}{{"pipeline", c.Pipeline}, {"ceiling", c.Ceiling}, {"at-least-once", c.AtLeastOnce}} {
			if s := requestSummary(x.m); s != "" {
				lines = append(lines, fmt.Sprintf("  %5d %6s %-14s %s\n", c.TxnSize, c.CommitInterval, x.name, s))
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("\nper transaction (at least once: per batch), requests sent × their mean time from write to response:\n")
	for _, l := range lines {
		b.WriteString(l)
	}
}

func writeThroughput(b *strings.Builder, cells []Cell) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "txn size\tcommit\tpipeline\tceiling\tat-least-once\tpipeline/ceiling\teos overhead\taborts\t")
	for _, c := range cells {
		ratio, overhead := "-", "-"
		if r := c.CeilingRatio(); r > 0 {
			ratio = fmt.Sprintf("%.2f", r)
		}
		if o, ok := c.Overhead(); ok {
			overhead = fmt.Sprintf("%.0f%%", 100*o)
		}
		aborts := "-"
		if c.Pipeline != nil {
			aborts = fmt.Sprint(c.Pipeline.Aborted)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.TxnSize, c.CommitInterval,
			rate(c.Pipeline), rate(c.Ceiling), rate(c.AtLeastOnce), ratio, overhead, aborts)
	}
	tw.Flush()
	var first time.Duration
	for _, c := range cells {
		for _, m := range []*Measurement{c.Pipeline, c.Ceiling, c.AtLeastOnce} {
			if m != nil {
				first = max(first, m.FirstCommit)
			}
		}
	}
	fmt.Fprintf(b, "  (each time includes joining the group and the first transaction: at most %s to the first commit)\n", round(first))
}

func writeLatency(b *strings.Builder, l *Latency) {
	if l == nil {
		return
	}
	basis := "set by hand"
	if l.PeakRate > 0 {
		basis = fmt.Sprintf("half the pipeline's %s records/s at this txn size and commit", thousands(l.PeakRate))
	}
	fmt.Fprintf(b, "\nend-to-end latency, produce timestamp to read_committed consumer, %s orders/s (%s; achieved %s) for %s over %d customers, txn %d, commit %s:\n",
		thousands(float64(l.Rate)), basis, thousands(l.Achieved), round(l.Duration), l.Customers, l.TxnSize, l.CommitInterval)
	fmt.Fprintf(b, "  p50 %s  p99 %s  max %s  (%d events)\n", round(l.P50), round(l.P99), round(l.Max), l.Events)
	if l.Warmup > 0 {
		fmt.Fprintf(b, "  not counted: %d events of a %s warm-up before, max %s\n", l.WarmupEvents, round(l.Warmup), round(l.WarmupMax))
	}
	if len(l.Windows) > 0 {
		fmt.Fprintf(b, "  p99 per %s of produce time: %s\n", round(l.Windows[0].Duration), l.windowP99s())
	}
	if l.Transactions > 0 {
		fmt.Fprintf(b, "  %d transactions: duration p99 %s, max %s\n", l.Transactions, round(l.TxnP99), round(l.TxnMax))
	}
}

func writeRestore(b *strings.Builder, r *Restore) {
	if r == nil {
		return
	}
	fmt.Fprintf(b, "\nrestore of %d customers, a customer and an order id record each (changelogs written by a pipeline run at %s records/s)\n",
		r.Customers, thousands(r.Fill.RecordsPerSec))
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "from\trecords\trestoring\trecords/s\tready in\t")
	for _, x := range []struct {
		name string
		run  RestoreRun
	}{{"empty state dir", r.FromEmpty}, {"local checkpoint", r.FromCheckpoint}} {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", x.name, x.run.Records, round(x.run.Restoring), perSec(x.run.RecordsPerSec), round(x.run.Ready))
	}
	if f := r.FetchOnly; f != nil {
		fmt.Fprintf(tw, "fetch only, a partition at a time\t%d\t%s\t%s\t-\t\n", f.Records, round(f.Serial), perSec(f.SerialPerSec()))
		fmt.Fprintf(tw, "fetch only, every partition at once\t%d\t%s\t%s\t-\t\n", f.Records, round(f.Concurrent), perSec(f.ConcurrentPerSec()))
	}
	tw.Flush()
}

func writeScaling(b *strings.Builder, ss []Scale) {
	if len(ss) == 0 {
		return
	}
	fmt.Fprintf(b, "\ninstances in one group (txn %d, commit %s)\n", ss[0].TxnSize, ss[0].CommitInterval)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "instances\trecords/s\tvs 1\taborts\t")
	for _, s := range ss {
		vs := "-"
		if ss[0].Measurement.RecordsPerSec > 0 {
			vs = fmt.Sprintf("%.2f", s.Measurement.RecordsPerSec/ss[0].Measurement.RecordsPerSec)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t\n", s.Instances, thousands(s.Measurement.RecordsPerSec), vs, s.Measurement.Aborted)
	}
	tw.Flush()
}

func writeTargets(b *strings.Builder, ts []Target) {
	if len(ts) == 0 {
		return
	}
	b.WriteString("\ntargets\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	for _, t := range ts {
		verdict := "MISSED"
		if t.Met {
			verdict = "met"
		}
		fmt.Fprintf(tw, "  %s\t%s\tgot %s\t%s\n", t.Name, t.Want, t.Got, verdict)
	}
	tw.Flush()
}

func rate(m *Measurement) string {
	if m == nil {
		return "-"
	}
	return thousands(m.RecordsPerSec)
}

// perSec formats a rate, "-" for none.
func perSec(f float64) string {
	if f <= 0 {
		return "-"
	}
	return thousands(f)
}

// thousands formats f rounded to an integer with thousands separators.
func thousands(f float64) string {
	n := int64(f + 0.5)
	if n < 0 {
		return "-" + thousands(-f)
	}
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// mb formats bytes in decimal megabytes, the unit of the RSS target.
func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// round rounds d for display: to the millisecond from 10 ms up, else to
// 0.1 ms.
func round(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}
