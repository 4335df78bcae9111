package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// openTxnStates are the transaction states in which a transaction still
// holds the last stable offset of the partitions it wrote.
var openTxnStates = []string{"Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence"}

// transactions finds the open transactions that touch the pipeline (they
// wrote one of its partitions, their transactional id belongs to one of
// its groups, or they hold one of its last stable offsets) and, for every
// partition whose last stable offset is below its high watermark, the
// producer holding it.
func (d *doctor) transactions(ctx context.Context) {
	gaps := d.gapPartitions()
	if !d.txnAPIs {
		for _, p := range gaps {
			d.r.add(Warning, CheckStable, tp(p.Topic, p.Partition), "last stable offset %d below the high watermark %d; the brokers cannot describe transactions (Kafka < 3.0)", p.LastStable, p.HighWatermark)
		}
		return
	}
	described := d.describeOpen(ctx)
	byPID := map[int64]kadm.DescribedTransaction{}
	for _, t := range described {
		byPID[t.ProducerID] = t
	}
	d.holders(ctx, gaps, byPID)

	now := time.Now()
	for _, t := range described.Sorted() {
		tx := transactionOf(t, now)
		for _, p := range gaps {
			if p.HeldBy != nil && p.HeldBy.ProducerID == t.ProducerID {
				tx.HoldsBack = append(tx.HoldsBack, tp(p.Topic, p.Partition))
			}
		}
		if !d.touches(tx) {
			continue
		}
		d.r.Transactions = append(d.r.Transactions, tx)
		if time.Duration(tx.AgeMillis)*time.Millisecond > d.o.TxnThreshold {
			d.txnFinding(tx)
		}
	}
	d.gapFindings(gaps)
}

// gapPartitions returns the pipeline's partitions with LSO < HWM.
func (d *doctor) gapPartitions() []*Partition {
	var out []*Partition
	for i := range d.r.Partitions {
		if d.r.Partitions[i].Gap() > 0 {
			out = append(out, &d.r.Partitions[i])
		}
	}
	return out
}

// describeOpen lists and describes the cluster's open transactions.
func (d *doctor) describeOpen(ctx context.Context) kadm.DescribedTransactions {
	listed, err := d.adm.ListTransactions(ctx, nil, openTxnStates)
	if err != nil {
		d.r.add(Warning, CheckTransactions, "cluster", "listing transactions (results may be partial): %s", err)
	}
	var ids []string
	for _, t := range listed.Sorted() {
		if slices.Contains(openTxnStates, t.State) { // old brokers ignore the filter
			ids = append(ids, t.TxnID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	described, err := d.adm.DescribeTransactions(ctx, ids...)
	if err != nil {
		d.r.add(Warning, CheckTransactions, "cluster", "describing transactions (results may be partial): %s", err)
	}
	for id, t := range described {
		if t.Err != nil || !slices.Contains(openTxnStates, t.State) { // ended in between
			delete(described, id)
		}
	}
	return described
}

func transactionOf(t kadm.DescribedTransaction, now time.Time) Transaction {
	tx := Transaction{
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

// touches reports whether tx concerns the pipeline.
func (d *doctor) touches(tx Transaction) bool {
	if len(tx.HoldsBack) > 0 {
		return true
	}
	for t := range tx.Partitions {
		if slices.Contains(d.p.Topics(), t) {
			return true
		}
	}
	return d.groupOf(tx.TransactionalID) != ""
}

// groupOf returns the pipeline group whose instances use txnID
// (<group>-<instance id>), or "".
func (d *doctor) groupOf(txnID string) string {
	for _, g := range d.p.Groups() {
		if strings.HasPrefix(txnID, g+"-") {
			return g
		}
	}
	return ""
}

// txnFinding reports a transaction open longer than the threshold.
func (d *doctor) txnFinding(tx Transaction) {
	age, timeout := fmtAge(tx.AgeMillis), fmtAge(tx.TimeoutMillis)
	msg := fmt.Sprintf("open for %s (threshold %s, transaction timeout %s), producer id %d epoch %d",
		age, d.o.TxnThreshold, timeout, tx.ProducerID, tx.ProducerEpoch)
	sev := Warning
	switch {
	case len(tx.HoldsBack) > 0:
		sev = Critical
		msg += fmt.Sprintf("; holds back the last stable offset of %s: read_committed readers of them wait", strings.Join(tx.HoldsBack, ", "))
	case len(tx.Partitions) > 0:
		sev = Critical
		msg += "; it wrote " + fmtPartitions(tx.Partitions)
	default:
		msg += "; its pending offset commit blocks the group's stable offset fetches"
	}
	if tx.AgeMillis > tx.TimeoutMillis && tx.TimeoutMillis > 0 {
		msg += "; it has outlived its timeout, so its coordinator did not abort it"
	}
	if g := d.groupOf(tx.TransactionalID); g != "" {
		msg += fmt.Sprintf("; restarting instance %q of group %s (same --instance-id) fences and aborts it", strings.TrimPrefix(tx.TransactionalID, g+"-"), g)
	} else {
		msg += "; restart its producer with the same transactional id, or abort it (kafka-transactions.sh abort)"
	}
	d.r.add(sev, CheckTransactions, tx.TransactionalID, "%s", msg)
}

// holders sets HeldBy on each gap partition: the active producer whose
// open transaction starts at the last stable offset.
func (d *doctor) holders(ctx context.Context, gaps []*Partition, byPID map[int64]kadm.DescribedTransaction) {
	if len(gaps) == 0 {
		return
	}
	set := kadm.TopicsSet{}
	for _, p := range gaps {
		set.Add(p.Topic, p.Partition)
	}
	prods, err := d.adm.DescribeProducers(ctx, set)
	if err != nil {
		d.r.add(Warning, CheckStable, "producers", "describing producers (results may be partial): %s", err)
	}
	now := time.Now()
	for _, p := range gaps {
		dp, ok := prods[p.Topic].Partitions[p.Partition]
		if !ok || dp.Err != nil || len(dp.ActiveProducers) == 0 {
			continue
		}
		h := pickHolder(dp.ActiveProducers, p.LastStable)
		held := &Holder{ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, StartOffset: h.CurrentTxnStartOffset, AgeMillis: -1}
		if t, ok := byPID[h.ProducerID]; ok {
			held.TransactionalID = t.TxnID
			if t.StartTimestamp > 0 {
				held.AgeMillis = max(0, now.Sub(time.UnixMilli(t.StartTimestamp)).Milliseconds())
			}
		} else if h.LastTimestamp > 0 {
			// No coordinator knows it: its last write is the best age.
			held.AgeMillis = max(0, now.Sub(time.UnixMilli(h.LastTimestamp)).Milliseconds())
		}
		p.HeldBy = held
	}
}

// pickHolder returns the producer whose transaction starts at lso, else
// the one with the earliest start.
func pickHolder(ps kadm.DescribedProducers, lso int64) kadm.DescribedProducer {
	all := ps.Sorted()
	best := all[0]
	for _, p := range all {
		if p.CurrentTxnStartOffset == lso {
			return p
		}
		if p.CurrentTxnStartOffset >= 0 && (best.CurrentTxnStartOffset < 0 || p.CurrentTxnStartOffset < best.CurrentTxnStartOffset) {
			best = p
		}
	}
	return best
}

// gapFindings reports gaps that no transaction finding explains: a holder
// unknown to every coordinator (a hanging transaction), or no holder.
func (d *doctor) gapFindings(gaps []*Partition) {
	for _, p := range gaps {
		h, subject := p.HeldBy, tp(p.Topic, p.Partition)
		switch {
		case h == nil:
			d.r.add(Warning, CheckStable, subject, "last stable offset %d below the high watermark %d and no open transaction found (commit markers in flight? run again)", p.LastStable, p.HighWatermark)
		case h.TransactionalID == "" && time.Duration(h.AgeMillis)*time.Millisecond > d.o.TxnThreshold:
			d.r.add(Critical, CheckStable, subject, "last stable offset %d held by producer id %d epoch %d, which no transaction coordinator knows, last write %s ago: a hanging transaction; abort it with kafka-transactions.sh abort --topic %s --partition %d --start-offset %d",
				p.LastStable, h.ProducerID, h.ProducerEpoch, fmtAge(h.AgeMillis), p.Topic, p.Partition, p.LastStable)
		}
	}
}

func fmtPartitions(m map[string][]int32) string {
	var parts []string
	for _, t := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s%v", t, m[t]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
