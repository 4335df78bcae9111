package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/mirror"
	"github.com/exactly-stream/exactly/mirror/mirrorprom"
)

// `exactly mirror` runs the mirror; its subcommands `mirror verify` and
// `mirror doctor` check it. `mirror-verify`, the name verification had
// before the kit had subcommands, still runs it for scripts but is not
// listed.
var (
	mirrorCommand = app.Command{
		Name:    "mirror",
		Summary: "copy topics from a source cluster to a target cluster exactly once (mirror verify|doctor check it)",
		Description: "Copy --topics (or every topic matching --topics-regex, new ones included) from the source " +
			"cluster to the target cluster exactly once: the source is read with read_committed, the copies and " +
			"the source positions (in the compacted topic <name>-mirror-offsets on the target) are written in one " +
			"target transaction. Partition p goes to partition p; target topics are created with the source's " +
			"partition count and retention settings. Instances with the same --name share the work; each source partition has its own " +
			"transactional ID (<name>/<topic>/<partition>), so a partition's new owner fences every earlier one. `exactly mirror verify` compares the copy record by record; " +
			"`exactly mirror doctor` checks the mirror's health.",
		Setup:    mirrorSetup,
		Commands: []app.Command{mirrorVerifySub, mirrorDoctorSub, mirrorTranslateCommand},
	}
	mirrorVerifySub = app.Command{
		Name:    "verify",
		Summary: "compare mirrored topics record by record with read_committed",
		Description: "Read the mirrored topics on both clusters with read_committed and compare them partition by " +
			"partition up to the mirror's positions (or whole, with --whole): same keys, values, headers and " +
			"timestamps in the same order, nothing missing, nothing extra. It exits 3 on any difference. Up to the " +
			"positions it holds on a running mirror; --whole wants a stopped mirror of a stopped source.",
		Setup: mirrorVerifySetup,
	}
	mirrorDoctorSub = app.Command{
		Name:    "doctor",
		Summary: "check the mirror's lag, progress, topics and open transactions",
		Description: "Check the mirror --name without changing anything: per source partition the source's last " +
			"stable offset, the mirrored position and the lag (more than --max-lag records waiting is a warning); " +
			"over a --sample window, partitions with records waiting whose position does not move are stuck (a " +
			"warning while other partitions move, critical when nothing moves at all); the offsets topic " +
			"<name>-mirror-offsets missing or not compacted, a target topic missing or with another partition " +
			"count (critical); the mirror's transactions (<name>/...) open on the target for longer than " +
			"--txn-threshold (a warning). It exits 0 when all is well, 4 on warnings and 5 when something is critical.",
		Setup: mirrorDoctorSetup,
	}
	// mirrorVerifyCommand is the old name of `mirror verify`, kept for
	// scripts.
	mirrorVerifyCommand = app.Command{
		Name:        "mirror-verify",
		Summary:     "old name of `mirror verify`",
		Description: "The old name of `exactly mirror verify`, kept for scripts. " + mirrorVerifySub.Description,
		Hidden:      true,
		Setup:       mirrorVerifySetup,
	}
)

// mirrorFlags are the flags both commands share.
type mirrorFlags struct {
	source, target, topics, regex, name, prefix *string
	timeout                                     *time.Duration
	sourceSec, targetSec                        *kafkaauth.Flags
}

func newMirrorFlags(fs *flag.FlagSet) *mirrorFlags {
	return &mirrorFlags{
		source:  fs.String("source-brokers", "", "comma-separated seed brokers of the source cluster (required)"),
		target:  fs.String("target-brokers", "", "comma-separated seed brokers of the target cluster (required)"),
		topics:  fs.String("topics", "", "comma-separated source topics to mirror"),
		regex:   fs.String("topics-regex", "", "mirror every source topic matching this regular expression (instead of --topics)"),
		name:    fs.String("name", "mirror", "the mirror's name: its source consumer group, the prefix of its transactional IDs and of its offsets topic"),
		prefix:  fs.String("rename-prefix", "", "prefix of every target topic name"),
		timeout: connectTimeoutFlag(fs),
		// --source-tls, --target-sasl-mechanism, ...: each cluster its own.
		sourceSec: kafkaauth.RegisterFlags(fs, "source-"),
		targetSec: kafkaauth.RegisterFlags(fs, "target-"),
	}
}

// security returns the kgo options of the source and the target
// connection flags.
func (f *mirrorFlags) security() (source, target []kgo.Opt, err error) {
	if source, err = f.sourceSec.Opts(); err != nil {
		return nil, nil, err
	}
	if target, err = f.targetSec.Opts(); err != nil {
		return nil, nil, err
	}
	return source, target, nil
}

func (f *mirrorFlags) validate() error {
	switch {
	case len(app.SplitBrokers(*f.source)) == 0:
		return app.Usagef("--source-brokers (or EXACTLY_SOURCE_BROKERS) is required")
	case len(app.SplitBrokers(*f.target)) == 0:
		return app.Usagef("--target-brokers (or EXACTLY_TARGET_BROKERS) is required")
	case (*f.topics == "") == (*f.regex == ""):
		return app.Usagef("want exactly one of --topics and --topics-regex")
	}
	if *f.regex != "" {
		if _, err := regexp.Compile(*f.regex); err != nil {
			return app.Usagef("--topics-regex: %v", err)
		}
	}
	return nil
}

func (f *mirrorFlags) topicList() []string {
	var out []string
	for _, t := range strings.Split(*f.topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func mirrorSetup(fs *flag.FlagSet) app.Runner {
	f := newMirrorFlags(fs)
	host, _ := os.Hostname()
	id := fs.String("instance-id", host, "this instance's ID: it names its clients and the position records it writes; fencing does not depend on it (default: the host name)")
	txnTimeout := fs.Duration("transaction-timeout", 10*time.Second, "target transaction timeout (Java transaction.timeout.ms)")
	interval := fs.Duration("commit-interval", 100*time.Millisecond, "how long a transaction collects records before it commits")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics on this address at /metrics (default: none)")
	session := fs.Duration("session-timeout", 45*time.Second, "source consumer group session timeout (Java session.timeout.ms); heartbeats go every tenth of it, at most every 3s")
	return func(ctx context.Context, stdout io.Writer) error {
		if err := f.validate(); err != nil {
			return err
		}
		if *session <= 0 {
			return app.Usagef("--session-timeout must be positive, got %s", *session)
		}
		srcSec, tgtSec, err := f.security()
		if err != nil {
			return err
		}
		for _, c := range []struct {
			which, brokers string
			sec            []kgo.Opt
		}{{"source", *f.source, srcSec}, {"target", *f.target, tgtSec}} {
			cl, err := connect(ctx, c.brokers, *f.timeout, c.sec...)
			if err != nil {
				return fmt.Errorf("%s cluster: %w", c.which, err)
			}
			cl.Close()
		}
		if ctx.Err() != nil {
			return nil
		}
		opts := []mirror.Opt{
			mirror.SourceBrokers(app.SplitBrokers(*f.source)...), mirror.TargetBrokers(app.SplitBrokers(*f.target)...),
			mirror.InstanceID(*id), mirror.RenamePrefix(*f.prefix), mirror.TransactionTimeout(*txnTimeout),
			mirror.CommitInterval(*interval), mirror.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
			mirror.SourceOpts(srcSec...), mirror.TargetOpts(tgtSec...),
			mirror.SourceOpts(kgo.SessionTimeout(*session), kgo.HeartbeatInterval(min(3*time.Second, *session/10))),
		}
		if *f.regex != "" {
			opts = append(opts, mirror.TopicsRegex(*f.regex))
		} else {
			opts = append(opts, mirror.Topics(f.topicList()...))
		}
		m, err := mirror.New(*f.name, opts...)
		if err != nil {
			return fmt.Errorf("%w: %w", app.ErrUsage, err)
		}
		if *metricsAddr != "" {
			stop, err := serveMirrorMetrics(*metricsAddr, *f.name, m)
			if err != nil {
				m.Close()
				return err
			}
			defer stop()
		}
		err = m.Run(ctx)
		st := m.Stats()
		fmt.Fprintf(stdout, "copied %d records (%d bytes) in %d transactions, %d aborted\n", st.RecordsCopied, st.BytesCopied, st.TxnsCommitted, st.TxnsAborted)
		return err
	}
}

func mirrorVerifySetup(fs *flag.FlagSet) app.Runner {
	f := newMirrorFlags(fs)
	whole := fs.Bool("whole", false, "compare whole topics (each side to its last stable offset) instead of up to the mirrored positions")
	readTimeout := fs.Duration("read-timeout", time.Minute, "bound on reading each topic")
	return func(ctx context.Context, stdout io.Writer) error {
		if err := f.validate(); err != nil {
			return err
		}
		src, tgt, err := connectBoth(ctx, f)
		if err != nil {
			return err
		}
		defer src.Close()
		defer tgt.Close()
		topics, err := verifyTopics(ctx, src, f)
		if err != nil {
			return err
		}
		opts := mirror.VerifyOptions{RenamePrefix: *f.prefix, Timeout: *readTimeout}
		if !*whole {
			opts.OffsetsTopic = *f.name + "-mirror-offsets"
		}
		rep, err := mirror.Verify(ctx, src, tgt, topics, opts)
		if err != nil {
			return fmt.Errorf("verifying: %w", err)
		}
		if _, err := rep.WriteTo(stdout); err != nil {
			return err
		}
		if n := rep.Differences(); n > 0 {
			return fmt.Errorf("%w: %d differences between source and target", app.ErrViolations, n)
		}
		return nil
	}
}

func mirrorDoctorSetup(fs *flag.FlagSet) app.Runner {
	f := newMirrorFlags(fs)
	var o mirror.DoctorOptions
	fs.Int64Var(&o.MaxLag, "max-lag", 10000, "records waiting in one source partition that make a warning")
	fs.DurationVar(&o.Sample, "sample", 10*time.Second, "watch the positions this long to find stuck partitions; 0 skips the watch")
	fs.DurationVar(&o.TxnThreshold, "txn-threshold", 30*time.Second, "report the mirror's transactions open longer than this")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long (it must exceed --sample)")
	return func(ctx context.Context, stdout io.Writer) error {
		if err := f.validate(); err != nil {
			return err
		}
		switch {
		case o.MaxLag <= 0:
			return app.Usagef("--max-lag (or EXACTLY_MAX_LAG): want a positive number of records, got %d", o.MaxLag)
		case o.Sample < 0:
			return app.Usagef("--sample (or EXACTLY_SAMPLE): want 0 or a positive duration, got %s", o.Sample)
		case o.TxnThreshold <= 0:
			return app.Usagef("--txn-threshold (or EXACTLY_TXN_THRESHOLD): want a positive duration, got %s", o.TxnThreshold)
		case *timeout <= o.Sample:
			return app.Usagef("--timeout (or EXACTLY_TIMEOUT) %s must exceed --sample %s", *timeout, o.Sample)
		}
		src, tgt, err := connectBoth(ctx, f)
		if err != nil {
			return err
		}
		defer src.Close()
		defer tgt.Close()
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		topics, err := verifyTopics(ctx, src, f)
		if err != nil {
			return err
		}
		o.RenamePrefix, o.Timeout = *f.prefix, min(30*time.Second, *timeout/2)
		r, err := mirror.Doctor(ctx, src, tgt, *f.name, topics, o)
		if err != nil {
			return fmt.Errorf("mirror doctor: %w", err)
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(r)
		} else {
			_, err = r.WriteTo(stdout)
		}
		if err != nil {
			return err
		}
		return app.Verdict(r.Findings)
	}
}

// connectBoth connects to the source and the target cluster.
func connectBoth(ctx context.Context, f *mirrorFlags) (src, tgt *kgo.Client, err error) {
	srcSec, tgtSec, err := f.security()
	if err != nil {
		return nil, nil, err
	}
	if src, err = connect(ctx, *f.source, *f.timeout, srcSec...); err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	if tgt, err = connect(ctx, *f.target, *f.timeout, tgtSec...); err != nil {
		src.Close()
		return nil, nil, fmt.Errorf("target: %w", err)
	}
	return src, tgt, nil
}

// verifyTopics returns --topics, or the source topics matching
// --topics-regex.
func verifyTopics(ctx context.Context, src *kgo.Client, f *mirrorFlags) ([]string, error) {
	if *f.regex == "" {
		return f.topicList(), nil
	}
	re := regexp.MustCompile(*f.regex)
	all, err := kadm.NewClient(src).ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing source topics: %w", err)
	}
	var out []string
	for _, t := range all.Names() {
		if re.MatchString(t) && !strings.HasPrefix(t, "__") {
			out = append(out, t)
		}
	}
	return out, nil
}

// serveMirrorMetrics serves m's metrics at addr/metrics until stop.
func serveMirrorMetrics(addr, name string, m *mirror.Mirror) (stop func(), err error) {
	return serveMetrics(addr, mirrorprom.NewCollector(name, m.Stats))
}

// serveMetrics serves c's metrics at addr/metrics until stop.
func serveMetrics(addr string, c prometheus.Collector) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: --metrics-addr: %w", app.ErrUsage, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { // ends when stop shuts the server down
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
