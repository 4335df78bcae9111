// Command txnprobe measures what one Kafka transaction costs on a cluster,
// next to an at-least-once batch of the same records, with no application
// in the way.
//
// It produces an input topic, then, per mode, consumes it in a consumer
// group and produces outputs per input record: in mode eos through a
// GroupTransactSession (one transaction per batch: produce, flush, End with
// the offsets), in mode alo through a plain client (produce, flush, commit
// the offsets). It prints, per batch, the time of each phase and, per
// Kafka API, the requests sent and their mean time from write to
// response, and it counts CONCURRENT_TRANSACTIONS retries from kgo's debug
// log. The flags --pause and --warm test two explanations of a slow
// transaction: the previous one still completing (pause between End and
// the next Begin), and the partitions of the transaction being added
// concurrently by several brokers (add one partition per leader broker,
// one after another, before the rest).
//
//	go run ./cmd/txnprobe --brokers 127.0.0.1:11092 --txn-size 100
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/bench"
	"github.com/exactly-stream/exactly/internal/tuning"
)

type config struct {
	out         io.Writer
	brokers     []string
	records     int
	txnSize     int
	interval    time.Duration
	modes       []string
	partitions  int
	replication int
	outputs     int
	pause       time.Duration
	warm        bool
	ctBackoff   time.Duration
	retry       time.Duration
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "txnprobe:", err)
		os.Exit(1)
	}
}

func run() error {
	c := config{out: os.Stdout}
	brokers := os.Getenv("KAFKA_BROKERS")
	if brokers == "" {
		brokers = "127.0.0.1:11092,127.0.0.1:12092,127.0.0.1:13092"
	}
	modes := "eos,alo"
	fs := flag.NewFlagSet("txnprobe", flag.ContinueOnError)
	fs.StringVar(&brokers, "brokers", brokers, "comma-separated seed brokers (default $KAFKA_BROKERS, else the cluster.sh cluster)")
	fs.IntVar(&c.records, "records", 20000, "input records")
	fs.IntVar(&c.txnSize, "txn-size", 100, "records per transaction (batch)")
	fs.DurationVar(&c.interval, "commit-interval", 100*time.Millisecond, "longest time a transaction collects records")
	fs.StringVar(&modes, "modes", modes, "comma-separated: eos (transactions), alo (at least once)")
	fs.IntVar(&c.partitions, "partitions", 6, "partitions of every topic")
	fs.IntVar(&c.replication, "replication-factor", 3, "replication factor of every topic")
	fs.IntVar(&c.outputs, "outputs", 3, "output records per input record, spread over three output topics")
	fs.DurationVar(&c.pause, "pause", 0, "pause between a transaction's End and the next Begin")
	fs.BoolVar(&c.warm, "warm", false, "after Begin, produce one record to one partition of each leader broker, one after another, before the rest")
	fs.DurationVar(&c.ctBackoff, "ct-backoff", 0, "kgo ConcurrentTransactionsBackoff (0: kgo's 20ms)")
	fs.DurationVar(&c.retry, "retry-backoff", 0, "constant kgo retry backoff (0: internal/tuning.ClientOpts's)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	c.brokers = strings.Split(brokers, ",")
	c.modes = strings.Split(modes, ",")
	switch {
	case c.records < 1:
		return errors.New("--records must be at least 1")
	case c.txnSize < 1:
		return errors.New("--txn-size must be at least 1")
	case c.outputs < 1:
		return errors.New("--outputs must be at least 1")
	case c.partitions < 1:
		return errors.New("--partitions must be at least 1")
	}
	for _, m := range c.modes {
		if m != "eos" && m != "alo" {
			return fmt.Errorf("--modes: unknown mode %q (eos, alo)", m)
		}
	}
	return probe(context.Background(), c)
}

func probe(ctx context.Context, c config) error {
	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	prefix := fmt.Sprintf("txnprobe-%d-", rand.IntN(1e9))
	input := prefix + "in"
	outputs := []string{prefix + "out1", prefix + "out2", prefix + "out3"}
	all := append([]string{input}, outputs...)
	resps, err := adm.CreateTopics(ctx, int32(c.partitions), int16(c.replication), nil, all...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	defer adm.DeleteTopics(context.WithoutCancel(ctx), all...)
	if err := produceInput(ctx, c, input); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%d records in %s; %d partitions, replication factor %d; txn size %d, commit interval %s\n",
		c.records, input, c.partitions, c.replication, c.txnSize, c.interval)
	for _, mode := range c.modes {
		if err := loop(ctx, c, mode, input, outputs, adm); err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
	}
	return nil
}

// produceInput writes the input: 150-byte values keyed by 1000 keys.
func produceInput(ctx context.Context, c config, input string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.DefaultProduceTopic(input),
		kgo.UnknownTopicRetries(-1), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	value := make([]byte, 150)
	var batch []*kgo.Record
	for i := range c.records {
		batch = append(batch, &kgo.Record{Key: fmt.Appendf(nil, "key-%d", i%1000), Value: value})
		if len(batch) == 5000 || i == c.records-1 {
			if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
				return fmt.Errorf("producing the input: %w", err)
			}
			batch = batch[:0]
		}
	}
	return nil
}

// phases sums the time of each phase of the loop's batches.
type phases struct {
	poll, warm, produce, flush, end time.Duration
	batches, records                int
}

func loop(ctx context.Context, c config, mode, input string, outputs []string, adm *kadm.Client) error {
	prof := &profile{RequestProfile: bench.NewRequestProfile()}
	group := input + "-" + mode
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(c.brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(input),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithHooks(prof), kgo.WithLogger(prof),
		kgo.RecordPartitioner(partitioner{}),
	}, tuning.ClientOpts()...)
	if c.retry > 0 {
		opts = append(opts, kgo.RetryBackoffFn(func(int) time.Duration { return c.retry }))
	}
	if c.ctBackoff > 0 {
		opts = append(opts, kgo.ConcurrentTransactionsBackoff(c.ctBackoff))
	}
	var (
		cl   *kgo.Client
		sess *kgo.GroupTransactSession
		err  error
	)
	if mode == "eos" {
		if sess, err = kgo.NewGroupTransactSession(append(opts, kgo.TransactionalID(group), kgo.TransactionTimeout(10*time.Second))...); err != nil {
			return err
		}
		defer sess.Close()
		cl = sess.Client()
	} else {
		if cl, err = kgo.NewClient(append(opts, kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())...); err != nil {
			return err
		}
		defer cl.Close()
	}
	var warm []*kgo.Record // one partition per leader broker
	if c.warm {
		md, err := adm.ListTopics(ctx, outputs...)
		if err != nil {
			return err
		}
		leaders := make(map[int32]bool)
		for _, t := range outputs {
			for _, p := range md[t].Partitions.Sorted() {
				if !leaders[p.Leader] {
					leaders[p.Leader] = true
					warm = append(warm, &kgo.Record{Topic: t, Partition: p.Partition, Key: []byte("\x00warm")})
				}
			}
		}
	}
	var ph phases
	value := make([]byte, 60)
	start := time.Now()
	for ph.records < c.records && ctx.Err() == nil {
		t0 := time.Now()
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		first := cl.PollRecords(pctx, c.txnSize).Records()
		cancel()
		if len(first) == 0 {
			continue
		}
		t1 := time.Now()
		if sess != nil {
			if err := sess.Begin(); err != nil {
				return err
			}
		}
		for _, r := range warm {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: []byte("w")}).FirstErr(); err != nil {
				return err
			}
		}
		t2 := time.Now()
		var errs kgo.FirstErrPromise
		n := 0
		last := make(map[int32]bool)
		produce := func(recs []*kgo.Record) {
			for _, r := range recs {
				last[r.Partition] = true
				for i := range c.outputs {
					cl.Produce(ctx, &kgo.Record{Topic: outputs[i%len(outputs)], Key: r.Key, Value: value}, errs.Promise())
				}
			}
			n += len(recs)
		}
		produce(first)
		for deadline := t1.Add(c.interval); n < c.txnSize; {
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			pctx, cancel := context.WithTimeout(ctx, wait)
			produce(cl.PollRecords(pctx, c.txnSize-n).Records())
			cancel()
		}
		// One small record per input partition to two of the outputs, as
		// the processor writes offset records to its changelogs.
		for part := range last {
			for _, t := range outputs[1:] {
				cl.Produce(ctx, &kgo.Record{Topic: t, Partition: part, Key: []byte("\x00offset"), Value: value[:8]}, errs.Promise())
			}
		}
		t3 := time.Now()
		if err := cl.Flush(ctx); err != nil {
			return err
		}
		if err := errs.Err(); err != nil {
			return err
		}
		t4 := time.Now()
		if sess != nil {
			committed, err := sess.End(ctx, kgo.TryCommit)
			if err != nil {
				return err
			}
			if !committed {
				fmt.Fprintln(c.out, "  a transaction aborted (rebalance); its records are consumed again")
				continue
			}
		} else {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return err
			}
			cl.AllowRebalance()
		}
		t5 := time.Now()
		ph.poll += t1.Sub(t0)
		ph.warm += t2.Sub(t1)
		ph.produce += t3.Sub(t2)
		ph.flush += t4.Sub(t3)
		ph.end += t5.Sub(t4)
		ph.batches++
		ph.records += n
		time.Sleep(c.pause)
	}
	elapsed := time.Since(start)
	per := func(d time.Duration) time.Duration {
		return (d / time.Duration(max(ph.batches, 1))).Round(10 * time.Microsecond)
	}
	commit := "End"
	if sess == nil {
		commit = "commit"
	}
	fmt.Fprintf(c.out, "%s: %d records in %s, %.0f records/s, %d batches of %.0f records; per batch: poll %s, warm %s, produce %s, flush %s, %s %s\n",
		mode, ph.records, elapsed.Round(time.Millisecond), float64(ph.records)/elapsed.Seconds(), ph.batches,
		float64(ph.records)/float64(max(ph.batches, 1)), per(ph.poll), per(ph.warm), per(ph.produce), per(ph.flush), commit, per(ph.end))
	prof.print(c.out, ph.batches)
	return nil
}

// partitioner sends records whose key starts with NUL to the partition set
// on them, and the others by key, as the processor does.
type partitioner struct{}

func (partitioner) ForTopic(t string) kgo.TopicPartitioner {
	return topicPartitioner{kgo.StickyKeyPartitioner(nil).ForTopic(t)}
}

type topicPartitioner struct{ kgo.TopicPartitioner }

func (topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (p topicPartitioner) Partition(r *kgo.Record, n int) int {
	if len(r.Key) > 0 && r.Key[0] == 0 {
		return int(r.Partition)
	}
	return p.TopicPartitioner.Partition(r, n)
}

// profile sums requests per API (bench.RequestProfile, a kgo hook) and
// counts CONCURRENT_TRANSACTIONS in kgo's debug log.
type profile struct {
	*bench.RequestProfile
	mu         sync.Mutex
	concurrent int
}

func (*profile) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (p *profile) Log(_ kgo.LogLevel, msg string, kv ...any) {
	if strings.Contains(msg, "CONCURRENT_TRANSACTIONS") || strings.Contains(fmt.Sprint(kv...), "CONCURRENT_TRANSACTIONS") {
		p.mu.Lock()
		p.concurrent++
		p.mu.Unlock()
	}
}

func (p *profile) print(w io.Writer, batches int) {
	stats := p.Stats()
	for _, api := range slices.Sorted(maps.Keys(stats)) {
		s := stats[api]
		fmt.Fprintf(w, "  %-20s %6d requests, %5.2f per batch, mean %s, max %s\n", api, s.Count,
			float64(s.Count)/float64(max(batches, 1)), s.Mean().Round(10*time.Microsecond), s.Max.Round(100*time.Microsecond))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(w, "  CONCURRENT_TRANSACTIONS in kgo's debug log: %d\n", p.concurrent)
}
