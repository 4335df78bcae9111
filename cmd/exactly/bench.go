package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/internal/bench"
	"github.com/exactly-stream/exactly/kafkaauth"
)

// benchOpts are the flags of `exactly bench` about its output.
type benchOpts struct {
	quick      bool
	jsonOut    bool
	chart      string
	cpuprofile string
	logLevel   string
	from       string
	// sec secures --brokers, targetSec --target-brokers (--target-tls,
	// --target-sasl-mechanism, ...).
	sec, targetSec *kafkaauth.Flags
}

var benchCommand = app.Command{
	Name:    "bench",
	Summary: "measure throughput, latency, restore and memory of the order pipeline, or the mirror",
	Description: "Measure the order pipeline on an embedded kfake cluster (or a real one with --brokers): " +
		"throughput over a grid of transaction sizes and commit intervals, end-to-end latency, restore speed, " +
		"memory, and scaling, then print a table (or JSON) and optionally draw a chart. " +
		"With --suite mirror, measure `exactly mirror` instead, between two embedded kfake clusters " +
		"(or --brokers as the source and --target-brokers as the target): throughput and MB/s next to a bare " +
		"transactional copy loop at the same transaction size, end-to-end latency, and instances. " +
		"The --tls and --sasl-* flags secure the connections to --brokers, the --target-tls and --target-sasl-* flags " +
		"those to --target-brokers. See BENCHMARKS.md.",
	Setup: benchSetup,
}

func benchSetup(fs *flag.FlagSet) app.Runner {
	c := bench.DefaultConfig()
	c.AddFlags(fs)
	// The default prefix holds the start time; help must not show one run's value.
	fs.Lookup("topic-prefix").Usage += " (default: bench-<unix time>-)"
	var o benchOpts
	fs.BoolVar(&o.quick, "quick", false, "small sizes that finish in about a minute (a smoke test, not figures); flags given win")
	fs.BoolVar(&o.jsonOut, "json", false, "print the results as JSON instead of the table")
	fs.StringVar(&o.chart, "chart", "", "also draw the throughput chart as a PNG into this file")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run (cluster included) to this file")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level of the instances: debug, info, warn, error")
	fs.StringVar(&o.from, "from", "", "measure nothing: print (and chart) the results of an earlier --json run saved in this file")
	o.sec, o.targetSec = kafkaauth.RegisterFlags(fs, ""), kafkaauth.RegisterFlags(fs, "target-")
	return func(ctx context.Context, stdout io.Writer) error { return runBench(ctx, stdout, c, o, fs) }
}

func runBench(ctx context.Context, stdout io.Writer, c bench.Config, o benchOpts, fs *flag.FlagSet) (err error) {
	if o.from != "" {
		res, err := readResults(o.from)
		if err != nil {
			return err
		}
		return writeBench(stdout, res, o)
	}
	if o.quick {
		c.ApplyQuick(fs)
	}
	for _, sec := range []*kafkaauth.Flags{o.sec, o.targetSec} {
		if err := sec.Validate(); err != nil {
			return err // a *kafkaauth.FlagError: app names the flag
		}
	}
	c.Security, c.TargetSecurity = o.sec.Config(), o.targetSec.Config()
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %w", app.ErrUsage, err)
	}
	if o.chart != "" && c.Suite == bench.SuiteMirror {
		return app.Usagef("--chart: the %s suite has no chart", bench.SuiteMirror)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %w", app.ErrUsage, err)
	}
	c.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	c.Progress = os.Stderr
	if c.Exe, err = os.Executable(); err != nil {
		c.Log.Warn("cannot find this executable; the RSS part is skipped", "err", err)
	}
	if o.cpuprofile != "" {
		stop, err := startCPUProfile(o.cpuprofile)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	res, err := bench.Run(ctx, c)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return writeBench(stdout, res, o)
}

func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// writeBench prints the results, then draws the chart if asked.
func writeBench(stdout io.Writer, res *bench.Results, o benchOpts) error {
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if err := res.WriteTable(stdout); err != nil {
		return err
	}
	if o.chart == "" {
		return nil
	}
	f, err := os.Create(o.chart)
	if err != nil {
		return fmt.Errorf("--chart: %w", err)
	}
	if err := bench.WriteChart(f, res); err != nil {
		f.Close()
		return fmt.Errorf("--chart: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--chart: %w", err)
	}
	fmt.Fprintf(os.Stderr, "chart written to %s\n", o.chart)
	return nil
}

func readResults(path string) (*bench.Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	var res bench.Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("--from %s: %w", path, err)
	}
	return &res, nil
}
