package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/mirror"
)

// The mirror mode (Config.Mode = ModeMirror) soaks `exactly mirror`
// instead of the order service. Two clusters, source and target (two
// embedded kfake clusters, or Brokers and TargetBrokers), a transactional
// producer writing keyed records into a few source topics, some
// transactions committed and some aborted, with idle phases where nothing
// is written; one to three `exactly mirror` instances sharing a name, each
// with its own instance id, copy them while the loop kills, restarts,
// freezes and scales them and injects broker faults on both clusters.
//
// Every record's value names its partition, its sequence number among
// the partition's committed (or aborted) records and which it is, so the
// verdict is exact: at the end production and faults stop, every instance
// but one stops, that one copies what is left, then stops; the source must
// hold exactly what the producer committed, mirror.Verify must find the
// target equal to the source record by record (nothing missing, nothing
// extra, nothing different), no aborted source record may be on the target,
// and no transaction may be left open on the target.
//
// The mirror stops by design when it cannot know a commit's outcome or is
// fenced (a restart rebuilds from the offsets topic), so an instance that
// exits with an error (status 1) is restarted, as a supervisor would, and
// listed in the report; any other exit (a panic, the race detector) is a
// violation.

// mirrorRun is the part of a run that only the mirror mode has.
type mirrorRun struct {
	name   string   // the mirror's name: its source group
	topics []string // the source topics, same names on the target

	// The target cluster; the run's own cluster fields are the source.
	tkfake   *kfake.Cluster // nil on a real cluster
	tbrokers []string
	topts    []kgo.Opt // TargetSecurity's, for every client of the target
	tcl      *kgo.Client
	tadm     *kadm.Client
	tfaults  *faulter // nil without faults

	ledger *ledger
}

func (m *mirrorRun) offsetsTopic() string { return m.name + "-mirror-offsets" }

// ledger is what the source producer committed and aborted, per source
// partition.
type ledger struct {
	mu    sync.Mutex
	parts map[string]*partLedger // by "<topic>/<partition>"
}

type partLedger struct {
	committed, aborted int
	// last is the offset of the last committed record, -1 for none.
	last int64
}

func newLedger() *ledger { return &ledger{parts: make(map[string]*partLedger)} }

func tpKey(topic string, p int32) string { return topic + "/" + strconv.Itoa(int(p)) }

func (l *ledger) part(topic string, p int32) *partLedger {
	k := tpKey(topic, p)
	pl := l.parts[k]
	if pl == nil {
		pl = &partLedger{last: -1}
		l.parts[k] = pl
	}
	return pl
}

// totals returns the records committed and aborted.
func (l *ledger) totals() (committed, aborted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, pl := range l.parts {
		committed, aborted = committed+pl.committed, aborted+pl.aborted
	}
	return committed, aborted
}

// mirrorValue is the value of a source record: its partition, its
// sequence number among the partition's committed (or aborted) records,
// and which.
func mirrorValue(topic string, p int32, seq int, aborted bool) []byte {
	state := "committed"
	if aborted {
		state = "aborted"
	}
	return []byte(fmt.Sprintf("%s/%d #%d %s", topic, p, seq, state))
}

// mirrorClusters starts the two embedded clusters, or connects to the
// configured ones, and creates the source topics and their target topics
// (same names, same partition counts), so that produce faults can aim at
// the target topics by id.
func (r *run) mirrorClusters(ctx context.Context) error {
	m := r.mirror
	if len(r.cfg.Brokers) == 0 {
		src, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			return fmt.Errorf("starting the embedded source cluster: %w", err)
		}
		r.kfake, r.brokers = src, src.ListenAddrs()
		tgt, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			return fmt.Errorf("starting the embedded target cluster: %w", err)
		}
		m.tkfake, m.tbrokers = tgt, tgt.ListenAddrs()
		r.st.r.Cluster = "two embedded kfake clusters (3 brokers each)"
		r.st.r.Generations = 0
		src.ControlKey(int16(kmsg.SyncGroup), r.observeGeneration)
		src.ControlKey(int16(kmsg.JoinGroup), r.capMirrorSession)
	} else {
		r.brokers, m.tbrokers = r.cfg.Brokers, r.cfg.TargetBrokers
		r.st.r.Cluster = fmt.Sprintf("source %s, target %s", strings.Join(r.brokers, ","), strings.Join(m.tbrokers, ","))
	}
	var err error
	if r.adminCl, err = r.client(); err != nil {
		return fmt.Errorf("connecting to the source %v: %w", r.brokers, err)
	}
	r.admin = kadm.NewClient(r.adminCl)
	if m.tcl, err = kgo.NewClient(slices.Concat([]kgo.Opt{kgo.SeedBrokers(m.tbrokers...)}, m.topts)...); err != nil {
		return fmt.Errorf("connecting to the target %v: %w", m.tbrokers, err)
	}
	m.tadm = kadm.NewClient(m.tcl)
	if err := reach(ctx, r.adminCl, r.brokers); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if err := reach(ctx, m.tcl, m.tbrokers); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	for i := range r.cfg.MirrorTopics {
		m.topics = append(m.topics, fmt.Sprintf("%smirror-src-%d", r.cfg.TopicPrefix, i))
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	srcIDs, err := createTopics(cctx, r.admin, m.topics, r.cfg.Partitions)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	r.parts = r.cfg.Partitions
	tgtIDs, err := createTopics(cctx, m.tadm, m.topics, r.cfg.Partitions)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if r.kfake != nil && !r.cfg.NoFaults {
		r.faults = &faulter{c: r.kfake, kinds: mirrorSourceFaultKinds, topics: m.topics, topicIDs: srcIDs, group: m.name}
		m.tfaults = &faulter{c: m.tkfake, kinds: mirrorTargetFaultKinds, topics: m.topics, topicIDs: tgtIDs}
		r.st.r.Faults = make(map[string]int)
	}
	return nil
}

// createTopics creates topics with parts partitions, or finds them with
// as many, and returns their ids.
func createTopics(ctx context.Context, adm *kadm.Client, topics []string, parts int32) ([][16]byte, error) {
	for _, t := range topics {
		resp, err := adm.CreateTopic(ctx, parts, -1, nil, t)
		if err == nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			err = resp.Err
		}
		if err != nil {
			return nil, fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	ds, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describing topics %v: %w", topics, err)
	}
	var ids [][16]byte
	for _, t := range topics {
		d := ds[t]
		if d.Err != nil {
			return nil, fmt.Errorf("describing topic %s: %w", t, d.Err)
		}
		if n := int32(len(d.Partitions)); n != parts {
			return nil, fmt.Errorf("topic %s exists with %d partitions, want %d", t, n, parts)
		}
		ids = append(ids, d.ID)
	}
	return ids, nil
}

// capMirrorSession is a kfake control that lowers the session timeout of
// the mirror group's JoinGroups to sessionTimeout (kgo's default is 45 s,
// and `exactly mirror` has no flag for it), so that a frozen instance is
// expelled within a short soak, and caps the rebalance timeout as
// capRebalanceTimeout does.
func (r *run) capMirrorSession(req kmsg.Request) (kmsg.Response, error, bool) {
	if j, ok := req.(*kmsg.JoinGroupRequest); ok && j.Group == r.group && j.SessionTimeoutMillis > int32(sessionTimeout.Milliseconds()) {
		j.SessionTimeoutMillis = int32(sessionTimeout.Milliseconds())
	}
	return capRebalanceTimeout(req)
}

// freezeFor draws how long pause freezes an instance: past the group's
// session timeout, 6 s on kfake (45 s, kgo's default, for a mirror on a
// real cluster), by 1-4 s.
func (r *run) freezeFor() time.Duration {
	session := sessionTimeout
	if r.mirror != nil && r.kfake == nil {
		session = 45 * time.Second
	}
	return session + time.Duration(1000+r.rng.IntN(3000))*time.Millisecond
}

// mirrorFault arms a fault on the source or the target cluster, for any
// instance (the mirror's transactional ids are not the instances').
func (r *run) mirrorFault() error {
	f, side := r.faults, "source"
	if r.rng.IntN(3) > 0 { // the target, where the transactions are, twice as often
		f, side = r.mirror.tfaults, "target"
	}
	name := f.inject(r.rng, "")
	fmt.Fprintf(r.cfg.Out, "  fault %s on the %s\n", name, side)
	return nil
}

// startMirrorProducer writes records into the source topics in
// transactions of a tenth of a second's worth, one in five aborted, with
// idle phases where nothing is written, until calm closes prodStop.
func (r *run) startMirrorProducer() {
	r.prodStop = make(chan struct{})
	seed := r.cfg.Seed
	r.wg.Go(func() {
		cl, err := r.client(kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.TransactionalID(r.cfg.TopicPrefix+"chaos-mirror-producer"))
		if err != nil {
			r.failProducer(err)
			return
		}
		defer cl.Close()
		p := &mirrorProducer{cl: cl, topics: r.mirror.topics, parts: r.parts, keys: r.cfg.Customers, ledger: r.mirror.ledger, rng: newRand(seed, 0x70726f64)}
		perTxn := max(1, r.cfg.Rate/10)
		r.pace(func() error {
			abort := p.rng.IntN(5) == 0
			if err := p.txn(context.Background(), perTxn, abort); err != nil {
				return err
			}
			r.st.add(func(rep *Report) {
				rep.Mirror.Transactions++
				if abort {
					rep.Mirror.AbortedTransactions++
				}
			})
			return nil
		})
	})
}

// pace runs step every 100 ms until prodStop closes or step fails (the
// producer then fails the soak), with an idle phase every IdleEvery,
// the first after half of it, while failures are injected.
func (r *run) pace(step func() error) {
	begin := time.Now()
	nextIdle := time.Time{}
	if r.cfg.IdleEvery > 0 {
		nextIdle = begin.Add(r.cfg.IdleEvery / 2)
	}
	for {
		if !nextIdle.IsZero() && time.Since(nextIdle) >= 0 && time.Since(begin) < r.cfg.Duration {
			nextIdle = nextIdle.Add(r.cfg.IdleEvery)
			if !r.mirrorIdle(time.Since(begin)) {
				return
			}
			continue
		}
		start := time.Now()
		if err := step(); err != nil {
			r.failProducer(err)
			return
		}
		select {
		case <-r.prodStop:
			return
		case <-time.After(100*time.Millisecond - time.Since(start)):
		}
	}
}

// mirrorIdle stops production for IdleFor, or until prodStop closes (then
// it returns false).
func (r *run) mirrorIdle(at time.Duration) bool {
	fmt.Fprintf(r.cfg.Out, "%s: idle phase: nothing written for %s\n", at.Round(time.Second), r.cfg.IdleFor)
	start := time.Now()
	defer func() {
		took := time.Since(start)
		r.st.add(func(rep *Report) {
			rep.Phases = append(rep.Phases, Phase{Kind: PhaseIdle, At: at, Took: took})
		})
	}()
	select {
	case <-r.prodStop:
		return false
	case <-time.After(r.cfg.IdleFor):
		return true
	}
}

func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// mirrorProducer writes the source records and keeps the ledger.
type mirrorProducer struct {
	cl     *kgo.Client // transactional, manual partitioner
	topics []string
	parts  int32
	keys   int
	ledger *ledger
	rng    *rand.Rand
}

// txn writes n records into random partitions of the source topics in one
// transaction, committed or aborted, and enters them into the ledger once
// it ended. An error means its outcome is unknown: the checks could not
// be exact.
func (p *mirrorProducer) txn(ctx context.Context, n int, abort bool) error {
	p.ledger.mu.Lock()
	next := make(map[string]int)
	recs := make([]*kgo.Record, 0, n)
	for range n {
		t, part := p.topics[p.rng.IntN(len(p.topics))], int32(p.rng.IntN(int(p.parts)))
		pl, k := p.ledger.part(t, part), tpKey(t, part)
		seq := pl.committed + next[k]
		if abort {
			seq = pl.aborted + next[k]
		}
		next[k]++
		recs = append(recs, &kgo.Record{
			Topic: t, Partition: part, Key: []byte(fmt.Sprintf("k-%04d", p.rng.IntN(max(1, p.keys)))),
			Value: mirrorValue(t, part, seq, abort), Headers: []kgo.RecordHeader{{Key: "chaos.seq", Value: []byte(strconv.Itoa(seq))}},
		})
	}
	p.ledger.mu.Unlock()
	if err := p.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning a source transaction: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		_ = p.cl.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("producing source records: %w", err)
	}
	if err := p.cl.EndTransaction(pctx, kgo.TransactionEndTry(!abort)); err != nil {
		return fmt.Errorf("ending a source transaction (commit %t): %w", !abort, err)
	}
	p.ledger.mu.Lock()
	defer p.ledger.mu.Unlock()
	for _, rec := range recs {
		pl := p.ledger.part(rec.Topic, rec.Partition)
		if abort {
			pl.aborted++
			continue
		}
		pl.committed++
		pl.last = max(pl.last, rec.Offset)
	}
	return nil
}

// mirrorLag returns how many source offsets the mirror's positions are
// behind the last record the producer committed, summed over partitions.
func (r *run) mirrorLag(ctx context.Context) (int64, error) {
	pos, err := mirror.ReadPositions(ctx, r.mirror.tcl, r.mirror.offsetsTopic(), 10*time.Second)
	if err != nil {
		return 0, err
	}
	l := r.mirror.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	var lag int64
	for k, pl := range l.parts {
		if pl.last < 0 {
			continue
		}
		i := strings.LastIndexByte(k, '/')
		p, _ := strconv.Atoi(k[i+1:])
		at, ok := pos[k[:i]][int32(p)]
		if !ok {
			at = 0
		}
		lag += max(0, pl.last+1-at)
	}
	return lag, nil
}

func (r *run) mirrorProgress(ctx context.Context, elapsed time.Duration) {
	committed, aborted := r.mirror.ledger.totals()
	lag, err := r.mirrorLag(ctx)
	if err != nil {
		fmt.Fprintf(r.cfg.Out, "%s: committed %d, aborted %d source records, %d instances (lag unknown: %v)\n", elapsed.Round(time.Second), committed, aborted, len(r.live), err)
		return
	}
	fmt.Fprintf(r.cfg.Out, "%s: committed %d, aborted %d source records; the mirror is %d offsets behind; %d instances\n", elapsed.Round(time.Second), committed, aborted, lag, len(r.live))
}

// mirrorDrain stops every instance but one and waits until that one copied
// everything the producer committed.
func (r *run) mirrorDrain(ctx context.Context) error {
	if len(r.live) == 0 {
		if err := r.startNew(); err != nil {
			return err
		}
	}
	keep := r.live[r.rng.IntN(len(r.live))]
	for _, in := range slices.Clone(r.live) {
		if in != keep {
			if err := r.stopOne(in); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(r.cfg.Out, "draining: %s copies what is left alone\n", keep.id)
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	var last error
	for {
		if err := r.housekeep(time.Now()); err != nil {
			return err
		}
		lag, err := r.mirrorLag(ctx)
		if err == nil && lag == 0 {
			fmt.Fprintln(r.cfg.Out, "drained: every committed source record mirrored")
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			r.dumpAll()
			return fmt.Errorf("the mirror did not drain within %s: %d offsets behind (last error: %v); the instances' goroutines are shown above", r.cfg.DrainTimeout, lag, last)
		}
		if err := exactlytest.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// mirrorCheck runs the checks of the mirror mode and completes the report.
func (r *run) mirrorCheck(ctx context.Context) (*Report, error) {
	src, err := r.client()
	if err != nil {
		return nil, err
	}
	defer src.Close()
	v, err := checkMirror(ctx, src, r.mirror.tcl, r.mirror.topics, r.mirror.offsetsTopic(), r.mirror.ledger, 15*time.Second)
	if err != nil {
		return nil, fmt.Errorf("verifying the mirror: %w", err)
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	out := r.st.r
	out.Mirror.Verdict = v
	if r.kfake != nil {
		out.Generations = r.gen.Load()
	}
	if r.faults != nil {
		out.Faults = r.faults.injected()
		maps.Copy(out.Faults, r.mirror.tfaults.injected()) // the kinds differ: source ones say so
	}
	return &out, nil
}

// MirrorVerdict is what the checks of a mirror soak found. Every count
// but the record counts is a violation.
type MirrorVerdict struct {
	// Committed and Aborted are the records the producer committed and
	// aborted on the source; SourceRecords and TargetRecords those read
	// back with read_committed.
	Committed, Aborted           int
	SourceRecords, TargetRecords int

	// Source lists where the source disagrees with what the producer
	// committed (then the comparison below is not exact).
	Source []string

	// Missing, Extra and Mismatch count mirror.Verify's differences
	// between source and target, compared whole; Details shows a few.
	Missing, Extra, Mismatch int
	Details                  []string

	// Duplicates counts target records whose value another target
	// record of the partition already has; AbortedCopies the target
	// records whose source record was aborted.
	Duplicates, AbortedCopies int
	// DuplicateDetails shows a few duplicates: the source offset, and
	// for each copy its target offset, the producer epoch of the target
	// transaction that committed it and the instance whose position
	// record that transaction holds.
	DuplicateDetails []string

	// Hanging lists target partitions whose last stable offset stayed
	// below the high watermark: a transaction left open.
	Hanging []string
}

// Violations counts what went wrong.
func (v *MirrorVerdict) Violations() int {
	return len(v.Source) + v.Missing + v.Extra + v.Mismatch + v.Duplicates + v.AbortedCopies + len(v.Hanging)
}

// checkMirror checks a stopped mirror of a stopped source: the source
// holds what the ledger says was committed, the target equals it record
// by record, holds no aborted record and no open transaction (waiting up
// to stableWait for transactions of killed instances to time out).
func checkMirror(ctx context.Context, src, tgt *kgo.Client, topics []string, offsetsTopic string, l *ledger, stableWait time.Duration) (*MirrorVerdict, error) {
	v := &MirrorVerdict{}
	v.Committed, v.Aborted = l.totals()
	var dups []duplicate
	var err error
	if v.Hanging, err = hanging(ctx, kadm.NewClient(tgt), append(slices.Clone(topics), offsetsTopic), stableWait); err != nil {
		return nil, err
	}
	for _, t := range topics {
		recs, err := exactlytest.ReadCommitted(ctx, src, t, exactlytest.ReadOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading source topic %s: %w", t, err)
		}
		v.checkSource(t, recs, l)
		tgtRecs, err := exactlytest.ReadCommitted(ctx, tgt, t, exactlytest.ReadOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading target topic %s: %w", t, err)
		}
		dups = append(dups, v.checkTarget(t, recs, tgtRecs)...)
	}
	if len(dups) > 0 {
		v.DuplicateDetails = describeDuplicates(ctx, tgt, offsetsTopic, dups)
	}
	// Every difference is kept, to count them by kind.
	rep, err := mirror.Verify(ctx, src, tgt, topics, mirror.VerifyOptions{MaxDifferences: v.SourceRecords + v.TargetRecords + 1})
	if err != nil {
		return nil, err
	}
	kinds := map[mirror.DifferenceKind]*int{mirror.Missing: &v.Missing, mirror.Extra: &v.Extra, mirror.Mismatch: &v.Mismatch}
	for _, p := range rep.Partitions {
		for i, d := range p.Differences {
			*kinds[d.Kind]++
			if i < 3 && len(v.Details) < 12 { // the first of every partition: later ones follow from them
				v.Details = append(v.Details, fmt.Sprintf("%s/%d: %s at record %d (source offset %d, target offset %d): %s", p.Topic, p.Partition, d.Kind, d.Index, d.SourceOffset, d.TargetOffset, d.Detail))
			}
		}
	}
	return v, nil
}

// checkSource compares a source topic, read with read_committed, with the
// ledger: per partition, the committed records #0.. in order.
func (v *MirrorVerdict) checkSource(topic string, recs map[int32][]*kgo.Record, l *ledger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, pl := range l.parts {
		i := strings.LastIndexByte(k, '/')
		if k[:i] != topic {
			continue
		}
		p, _ := strconv.Atoi(k[i+1:])
		got := recs[int32(p)]
		v.SourceRecords += len(got)
		if len(got) != pl.committed {
			v.Source = append(v.Source, fmt.Sprintf("%s: %d committed records, the producer committed %d", k, len(got), pl.committed))
			continue
		}
		for seq, r := range got {
			if want := mirrorValue(topic, int32(p), seq, false); string(r.Value) != string(want) {
				v.Source = append(v.Source, fmt.Sprintf("%s: record %d is %q, want %q", k, seq, r.Value, want))
				break
			}
		}
	}
}

// duplicate is a target record whose value an earlier target record of
// its partition has.
type duplicate struct {
	topic     string
	srcOffset int64 // -1 when the source has no such committed record
	first, r  *kgo.Record
}

// checkTarget counts a target topic's records, its duplicates and its
// copies of aborted records, and returns the duplicates; src is the
// topic's committed source records.
func (v *MirrorVerdict) checkTarget(topic string, src, recs map[int32][]*kgo.Record) []duplicate {
	var dups []duplicate
	for p, rs := range recs {
		srcAt := make(map[string]int64, len(src[p]))
		for _, r := range src[p] {
			srcAt[string(r.Value)] = r.Offset
		}
		seen := make(map[string]*kgo.Record, len(rs))
		for _, r := range rs {
			v.TargetRecords++
			if strings.HasSuffix(string(r.Value), " aborted") {
				v.AbortedCopies++
			}
			if first := seen[string(r.Value)]; first != nil {
				v.Duplicates++
				at, ok := srcAt[string(r.Value)]
				if !ok {
					at = -1
				}
				dups = append(dups, duplicate{topic, at, first, r})
				continue
			}
			seen[string(r.Value)] = r
		}
	}
	return dups
}

// describeDuplicates says, for the first few duplicates, which target
// transactions committed each copy: a transaction is a producer ID and
// epoch (every commit bumps the epoch under KIP-890), and its position
// record on the offsets topic names the instance and the position.
func describeDuplicates(ctx context.Context, tgt *kgo.Client, offsetsTopic string, dups []duplicate) []string {
	type txn struct {
		id    int64
		epoch int16
	}
	writers := make(map[txn]string)
	err := exactlytest.ReadCommittedFunc(ctx, tgt, offsetsTopic, exactlytest.ReadOptions{Timeout: 30 * time.Second}, func(r *kgo.Record) error {
		instance := "?"
		for _, h := range r.Headers {
			if h.Key == "exactly.mirror.instance" {
				instance = string(h.Value)
			}
		}
		writers[txn{r.ProducerID, r.ProducerEpoch}] = fmt.Sprintf("%s, position %s of %s", instance, r.Value, r.Key)
		return nil
	})
	copyOf := func(r *kgo.Record) string {
		w, ok := writers[txn{r.ProducerID, r.ProducerEpoch}]
		if !ok {
			w = "no position record"
		}
		return fmt.Sprintf("target offset %d (producer %d epoch %d: %s)", r.Offset, r.ProducerID, r.ProducerEpoch, w)
	}
	var out []string
	for _, d := range dups[:min(len(dups), 10)] {
		out = append(out, fmt.Sprintf("duplicate %s/%d: %q (source offset %d) at %s and at %s", d.topic, d.r.Partition, d.r.Value, d.srcOffset, copyOf(d.first), copyOf(d.r)))
	}
	if err != nil {
		out = append(out, fmt.Sprintf("(reading the offsets topic %s for the writers: %s)", offsetsTopic, err.Error()))
	}
	return out
}

// hanging returns the partitions of topics (those that exist) whose last
// stable offset is below the high watermark after waiting up to wait.
func hanging(ctx context.Context, adm *kadm.Client, topics []string, wait time.Duration) ([]string, error) {
	deadline := time.Now().Add(wait)
	for {
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("listing the target's high watermarks: %w", err)
		}
		stable, err := adm.ListCommittedOffsets(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("listing the target's last stable offsets: %w", err)
		}
		var out []string
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				return // a topic that does not exist: nothing hangs there
			}
			if s, ok := stable.Lookup(o.Topic, o.Partition); !ok || s.Err != nil || s.Offset < o.Offset {
				out = append(out, fmt.Sprintf("%s/%d: last stable offset %d, high watermark %d", o.Topic, o.Partition, s.Offset, o.Offset))
			}
		})
		if len(out) == 0 || time.Now().After(deadline) {
			slices.Sort(out)
			return out, nil
		}
		if err := exactlytest.Sleep(ctx, 250*time.Millisecond); err != nil {
			return nil, err
		}
	}
}
