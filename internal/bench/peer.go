package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"
)

// PeerCell is one side-by-side point: exactly and the peer over the same
// input at one commit interval, instance (thread) count and mode.
type PeerCell struct {
	Peer           string        `json:"peer"`
	Mode           string        `json:"mode"` // PeerModeDefaults or PeerModeEqual
	CommitInterval time.Duration `json:"commit_interval_ns"`
	Instances      int           `json:"instances"`       // exactly instances (loops with Loops), Kafka Streams threads
	Loops          bool          `json:"loops,omitempty"` // exactly ran one instance of Instances loops
	TxnSize        int           `json:"txn_size"`        // exactly's MaxRecordsPerTxn (and the peer's in PeerModeEqual)
	Exactly        Measurement   `json:"exactly"`
	KStreams       Measurement   `json:"kstreams"`
}

// Ratio returns exactly's throughput over the peer's, 0 without a peer
// figure.
func (c PeerCell) Ratio() float64 {
	if c.KStreams.RecordsPerSec == 0 {
		return 0
	}
	return c.Exactly.RecordsPerSec / c.KStreams.RecordsPerSec
}

// checkPeer says why the configured peer cannot run, before any run.
func (c *Config) checkPeer() error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("--peer %s: %w: %w", c.Peer, errNoPeer, err)
	}
	if _, err := os.Stat(c.PeerJar); err != nil {
		return fmt.Errorf("--peer %s: %w: %w", c.Peer, errNoPeer, err)
	}
	return nil
}

// peers measures exactly and the peer side by side: per commit interval,
// instance count and mode, exactly first and then the peer on fresh topics
// (and, with Repeat, in rounds), reporting the medians.
func (r *runner) peers(ctx context.Context, res *Results) error {
	c := &r.cfg
	c.progressf("side by side with Kafka Streams over %d records", r.inputCount)
	for _, interval := range c.CommitIntervals {
		for _, n := range c.PeerInstances {
			for _, mode := range []string{PeerModeDefaults, PeerModeEqual} {
				cell, err := r.peerCell(ctx, mode, interval, n)
				if err != nil {
					return err
				}
				res.Peer = append(res.Peer, cell)
			}
		}
	}
	return nil
}

// peerCell measures one side-by-side point.
func (r *runner) peerCell(ctx context.Context, mode string, interval time.Duration, n int) (PeerCell, error) {
	c := &r.cfg
	cell := PeerCell{Peer: c.Peer, Mode: mode, CommitInterval: interval, Instances: n, Loops: c.PeerLoops, TxnSize: processorDefaultTxnSize}
	instances := n
	if c.PeerLoops {
		r.loops, instances = n, 1
		defer func() { r.loops = 0 }()
	}
	commitEvery := 0
	if mode == PeerModeEqual {
		cell.TxnSize, commitEvery = c.PeerTxnSize, c.PeerTxnSize
	}
	suffix := fmt.Sprintf("%s-%s-n%d", mode, interval, n)
	var ex, ks []Measurement
	for round := range c.repeat() {
		m, err := r.pipeline(ctx, runName("exactly-"+suffix, round, c.repeat()), cell.TxnSize, interval, instances)
		if err != nil {
			return cell, err
		}
		ex = append(ex, m)
		if m, err = r.kstreams(ctx, runName("kstreams-"+suffix, round, c.repeat()), interval, n, commitEvery); err != nil {
			return cell, err
		}
		ks = append(ks, m)
	}
	cell.Exactly, cell.KStreams = median(ex), median(ks)
	return cell, nil
}

// writePeer writes the side-by-side table.
func writePeer(b *strings.Builder, cells []PeerCell) {
	if len(cells) == 0 {
		return
	}
	if cells[0].Loops {
		b.WriteString("\nside by side with Kafka Streams (exactly_once_v2), one process each: exactly one instance of n loops, Kafka Streams one JVM of n threads; input records/s\n")
	} else {
		b.WriteString("\nside by side with Kafka Streams (exactly_once_v2, one JVM, num.stream.threads = instances), input records/s\n")
	}
	fmt.Fprintf(b, "defaults: exactly's transaction ends at the commit interval or %d records, Kafka Streams' spans the commit interval;\n", processorDefaultTxnSize)
	b.WriteString("equal: both end a transaction every txn records (Kafka Streams: ProcessorContext.commit every txn records of a task)\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "commit\tn\tmode\ttxn\texactly\tKafka Streams\texactly / KS\tafter 1st commit: exactly\tKafka Streams\t")
	for _, c := range cells {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%.2f\t%s\t%s\t\n", c.CommitInterval, c.Instances, c.Mode, c.TxnSize,
			thousands(c.Exactly.RecordsPerSec), thousands(c.KStreams.RecordsPerSec), c.Ratio(),
			thousands(afterFirstCommit(c.Exactly)), thousands(afterFirstCommit(c.KStreams)))
	}
	_ = tw.Flush()
	b.WriteString("(after 1st commit: records / (time - time to the first commit), leaving out start-up: the JVM's, Kafka Streams' and the group join)\n")
}

// afterFirstCommit returns m's rate once started: its records over the time
// from its first commit to its last, 0 when it has none.
func afterFirstCommit(m Measurement) float64 {
	d := m.Elapsed - m.FirstCommit
	if d <= 0 {
		return 0
	}
	return float64(m.Records) / d.Seconds()
}
