// Command exactly runs the reference order pipeline of the exactly
// stream processor and its operator tools.
//
//	exactly run      run one instance of the order (or payment) service
//	exactly produce  write orders to the orders topic
//	exactly verify   check the pipeline's output (E1-E5) with read_committed
//	exactly demo     all of the above on an embedded three-broker cluster
//	exactly topics   create or check the pipeline's topics
//	exactly doctor   check the cluster, the groups and open transactions
//	exactly bench    measure the pipeline (see BENCHMARKS.md)
//
// Every flag can also be set through an environment variable named
// EXACTLY_<FLAG> (upper case, dashes as underscores); a flag given on the
// command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = []command{
	{"run", "run one instance of the order or payment service", runCmd},
	{"produce", "write orders (some malformed, some re-sent) to the orders topic", produceCmd},
	{"verify", "read every topic with read_committed and check exactly-once (E1-E5)", verifyCmd},
	{"demo", "run the whole pipeline on an embedded three-broker cluster and verify it", demoCmd},
	{"topics", "create or check the pipeline's topics (topics create|check)", topicsCmd},
	{"doctor", "check brokers, replication, groups' lag and open transactions", doctorCmd},
	{"bench", "measure throughput, latency, restore and memory of the order pipeline", benchCmd},
	{"chaos", "randomized soak: crashes, restarts, scaling, zombies and broker faults, then verify", chaosCmd},
}

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go onSignals(sigs, cancel) // the process's one background goroutine; it ends with the process
	if err := dispatch(ctx, os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "exactly:", err)
		}
		os.Exit(exitCode(err))
	}
}

// onSignals turns the first SIGINT or SIGTERM into a clean shutdown (the
// open transaction ends, committed if it can be, the member leaves the
// group, the state closes) and the second into an immediate exit, which is
// as safe as a crash: nothing uncommitted is visible, and a restart
// restores.
func onSignals(sigs <-chan os.Signal, cancel context.CancelFunc) {
	s := <-sigs
	fmt.Fprintf(os.Stderr, "exactly: %s: shutting down cleanly; send it again to exit at once\n", s)
	cancel()
	s = <-sigs
	fmt.Fprintf(os.Stderr, "exactly: %s again: exiting now\n", s)
	os.Exit(130)
}

func dispatch(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		usage(os.Stderr)
		return errors.New("no command given")
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout)
		}
	}
	usage(os.Stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: exactly <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.usage)
	}
}

// errViolations marks a verification that found violations (exit 3).
var errViolations = errors.New("verification failed")

func exitCode(err error) int {
	if ee, ok := errors.AsType[*exitError](err); ok {
		return ee.code
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errViolations):
		return 3
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

// parse parses args, then fills every flag not given on the command line
// from its environment variable EXACTLY_<NAME>. A bad value names the flag
// or the variable.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		v, ok := os.LookupEnv(env)
		if err != nil || set[f.Name] || !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("%w: environment variable %s: %w", errUsage, env, serr)
		}
	})
	return err
}

func envName(flagName string) string {
	return "EXACTLY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// logFlags adds --log-level and --log-format and returns a constructor.
func logFlags(fs *flag.FlagSet) func() (*slog.Logger, error) {
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	return func() (*slog.Logger, error) {
		var l slog.Level
		if err := l.UnmarshalText([]byte(*level)); err != nil {
			return nil, fmt.Errorf("%w: --log-level: %w", errUsage, err)
		}
		opts := &slog.HandlerOptions{Level: l}
		switch *format {
		case "text":
			return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
		case "json":
			return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
		}
		return nil, fmt.Errorf("%w: --log-format: want text or json, got %q", errUsage, *format)
	}
}

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}
