package bench

import (
	"cmp"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AddFlags registers a flag for every field of c that a command line sets,
// with c's current values as defaults.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Suite, "suite", cmp.Or(c.Suite, SuitePipeline), "what to measure: "+SuitePipeline+" (the order pipeline) or "+SuiteMirror+" (exactly mirror between two clusters)")
	fs.Var((*stringList)(&c.Brokers), "brokers", "comma-separated seed brokers of a real cluster (default: an embedded kfake cluster); the mirror suite's source")
	fs.Var((*stringList)(&c.TargetBrokers), "target-brokers", "the mirror suite's target cluster (default: a second embedded kfake cluster, or with only --brokers the same cluster, target topics renamed)")
	fs.IntVar(&c.KfakeBrokers, "kfake-brokers", c.KfakeBrokers, "brokers of the embedded cluster")
	fs.Var(int32Value{&c.Partitions}, "partitions", "partitions of every topic created")
	fs.Var(int16Value{&c.Replication}, "replication-factor", "replication factor of created topics (-1: the broker's default)")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", c.TopicPrefix, "prefix of every topic and group; change it between runs on one real cluster")
	fs.BoolVar(&c.KeepTopics, "keep-topics", c.KeepTopics, "keep each run's topics and groups instead of deleting them")
	fs.IntVar(&c.Orders, "orders", c.Orders, "orders of the throughput input")
	fs.IntVar(&c.Customers, "customers", c.Customers, "distinct customers of the throughput and latency input")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "generator seed of the input")
	fs.Var((*intList)(&c.TxnSizes), "txn-sizes", "transaction sizes (processor.MaxRecordsPerTxn) of the throughput grid")
	fs.Var((*durationList)(&c.CommitIntervals), "commit-intervals", "commit intervals of the throughput grid")
	fs.DurationVar(&c.LatencyWarmup, "latency-warmup", c.LatencyWarmup, "how long the latency run produces first without counting the events")
	fs.DurationVar(&c.LatencyDuration, "latency-duration", c.LatencyDuration, "how long the latency run produces")
	fs.IntVar(&c.LatencyRate, "latency-rate", c.LatencyRate, "orders/s of the latency run (0: half the pipeline's throughput at the latency run's transaction size and commit interval)")
	fs.IntVar(&c.LatencyTxnSize, "latency-txn-size", c.LatencyTxnSize, "transaction size of the latency run")
	fs.DurationVar(&c.LatencyCommitInterval, "latency-commit-interval", c.LatencyCommitInterval, "commit interval of the latency run")
	fs.IntVar(&c.MirrorRecords, "mirror-records", c.MirrorRecords, "records the mirror suite copies in each throughput run")
	fs.IntVar(&c.MirrorValueBytes, "mirror-value-bytes", c.MirrorValueBytes, "value size of the mirror suite's records (keys are 8 bytes)")
	fs.IntVar(&c.RestoreCustomers, "restore-customers", c.RestoreCustomers, "customers (keys) in the changelog that is restored and held by the RSS child")
	fs.IntVar(&c.RSSOrders, "rss-orders", c.RSSOrders, "orders the RSS child processes after restoring")
	fs.Var((*intList)(&c.Instances), "instances", "instance counts of the scaling runs")
	fs.IntVar(&c.Loops, "loops", c.Loops, "transaction loops of every exactly instance (run --loops; the Java num.stream.threads)")
	fs.IntVar(&c.ScaleTxnSize, "scale-txn-size", c.ScaleTxnSize, "transaction size of the scaling runs")
	fs.DurationVar(&c.ScaleCommitInterval, "scale-commit-interval", c.ScaleCommitInterval, "commit interval of the scaling runs")
	fs.IntVar(&c.Repeat, "repeat", c.Repeat, "run each throughput and scaling measurement this many times and report the median")
	fs.StringVar(&c.Peer, "peer", c.Peer, "measure a peer side by side with exactly: "+PeerKStreams+" (the order application on Kafka Streams, exactly_once_v2; needs java and `make kstreams-build`)")
	fs.StringVar(&c.PeerJar, "peer-jar", cmp.Or(c.PeerJar, DefaultPeerJar), "the Kafka Streams peer's jar")
	fs.Var((*intList)(&c.PeerInstances), "peer-instances", "exactly instances and Kafka Streams threads of the side-by-side runs")
	fs.BoolVar(&c.PeerLoops, "peer-loops", c.PeerLoops, "run exactly's side of the side-by-side runs as one instance of --peer-instances transaction loops, threads of one process as Kafka Streams' are")
	fs.IntVar(&c.PeerTxnSize, "peer-txn-size", c.PeerTxnSize, "records per transaction of both sides in the side-by-side runs at equal transaction size")
	fs.Var((*stringList)(&c.Skip), "skip", "parts not to run, comma-separated: "+strings.Join(AllParts, ","))
	fs.DurationVar(&c.RunTimeout, "run-timeout", c.RunTimeout, "bound of each single run")
	fs.StringVar(&c.Dir, "dir", c.Dir, "directory for the state directories (default: the system's temporary directory)")
}

// quickFields are the fields QuickConfig changes, by flag name.
var quickFields = map[string]func(c *Config, q Config){
	"orders":            func(c *Config, q Config) { c.Orders = q.Orders },
	"mirror-records":    func(c *Config, q Config) { c.MirrorRecords = q.MirrorRecords },
	"customers":         func(c *Config, q Config) { c.Customers = q.Customers },
	"latency-duration":  func(c *Config, q Config) { c.LatencyDuration = q.LatencyDuration },
	"restore-customers": func(c *Config, q Config) { c.RestoreCustomers = q.RestoreCustomers },
	"rss-orders":        func(c *Config, q Config) { c.RSSOrders = q.RSSOrders },
	"run-timeout":       func(c *Config, q Config) { c.RunTimeout = q.RunTimeout },
}

// ApplyQuick sets QuickConfig's sizes on every field whose flag fs (parsed,
// with AddFlags) did not set.
func (c *Config) ApplyQuick(fs *flag.FlagSet) {
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	q := QuickConfig()
	for name, apply := range quickFields {
		if !set[name] {
			apply(c, q)
		}
	}
}

// intList is a flag of positive integers separated by commas.
type intList []int

func (l *intList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("want positive integers separated by commas, got %q", v)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

// durationList is a flag of positive durations separated by commas.
type durationList []time.Duration

func (l *durationList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = v.String()
	}
	return strings.Join(s, ",")
}

func (l *durationList) Set(v string) error {
	var out []time.Duration
	for _, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			return fmt.Errorf("want positive durations separated by commas, got %q", v)
		}
		out = append(out, d)
	}
	*l = out
	return nil
}

// stringList is a flag of words separated by commas; empty is none.
type stringList []string

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *stringList) Set(v string) error {
	*l = nil
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

type int32Value struct{ p *int32 }

func (v int32Value) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatInt(int64(*v.p), 10)
}

func (v int32Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return fmt.Errorf("want an integer, got %q", s)
	}
	*v.p = int32(n)
	return nil
}

type int16Value struct{ p *int16 }

func (v int16Value) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatInt(int64(*v.p), 10)
}

func (v int16Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 16)
	if err != nil {
		return fmt.Errorf("want an integer, got %q", s)
	}
	*v.p = int16(n)
	return nil
}
