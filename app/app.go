package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// Config describes a program: its name, its services and its extra
// commands. A program with one service sets Topology (and Group,
// DeadLetterTopic) directly; one with several lists them in Services.
type Config struct {
	// Name is the program's name in help and messages; it also gives the
	// environment variables their prefix: "wordcount" reads
	// WORDCOUNT_BROKERS for --brokers. It is required.
	Name string

	// Summary is one line saying what the program does, printed atop the
	// help. The default value is empty.
	Summary string

	// Version is what --version prints. The default value is the main
	// module's version and VCS revision from runtime/debug.ReadBuildInfo.
	Version string

	// Topology, Group and DeadLetterTopic describe the service of a
	// program with one service, named Name; see the fields of Service.
	// They are ignored when Services is set.
	Topology        TopologyFunc
	Group           string
	DeadLetterTopic string

	// Options are processor options every service's `run` applies after
	// the ones its flags set, so they win: TLS or SASL through
	// processor.KgoOpts, state options, hooks (which add to the kit's
	// metrics hooks). The default value is none.
	Options []processor.Opt

	// Services are the services of a program with several, in data-flow
	// order (an output of one may be the input of a later one). `run
	// --service <name>` picks one; the first is the default.
	Services []Service

	// Commands are the program's own commands, listed after the kit's.
	Commands []Command
}

// TopologyFunc builds a service's topology with every topic name prefixed
// by topicPrefix (the --topic-prefix flag, empty by default), so that
// several copies of a pipeline can share one cluster.
type TopologyFunc func(topicPrefix string) (*topology.Topology, error)

// Service is one stream-processing application of a program: a topology
// run by a consumer group.
type Service struct {
	// Name is what `run --service` calls the service. It is required
	// when a program has several services.
	Name string

	// Topology builds the service's topology. It is required.
	Topology TopologyFunc

	// Group is the consumer group and application id; --topic-prefix
	// prefixes it and --group overrides it. The default value is the
	// service's name.
	Group string

	// DeadLetterTopic receives the records the service cannot process;
	// --topic-prefix prefixes it. The default value is <group>-dlq.
	DeadLetterTopic string

	// Options are processor options this service's `run` applies after
	// Config.Options. The default value is none.
	Options []processor.Opt
}

// Runner runs a command whose flags are parsed; its report goes to
// stdout. It returns an error wrapping ErrUsage for bad input (exit 2),
// ErrViolations for a failed check (exit 3), anything else for a failure
// (exit 1).
type Runner func(ctx context.Context, stdout io.Writer) error

// Command is a program's own command, next to the kit's, or a
// subcommand of one.
type Command struct {
	// Name is the command's name on the command line: one word, not
	// starting with a dash.
	Name string
	// Summary is its line in the command list.
	Summary string
	// Description is the paragraph that `<command> --help` prints.
	Description string
	// Setup declares the command's flags on fs and returns the function
	// that runs the command once they are parsed (from the command line,
	// then from the environment). It is required unless Commands is set;
	// a command with Commands and no Setup only groups its subcommands.
	Setup func(fs *flag.FlagSet) Runner
	// Commands are the command's subcommands: `<program> <command>
	// <subcommand> [flags]` runs one, `<program> <command> --help` lists
	// them. A first argument that is not a flag must name one of them
	// (else it is a usage error naming it); flags alone run Setup. A
	// subcommand's flags are read from the environment like every other
	// flag: <PREFIX>_<FLAG>, the command names left out. The default
	// value is none.
	Commands []Command
	// Hidden leaves the command out of the command list; it runs, and
	// `help <command>` describes it, as any other. It is for an old name
	// kept for scripts. The default value is false.
	Hidden bool
}

// Main runs the program described by c with the process's arguments and
// exits with the status of the package documentation. It is a program's
// whole main. The first SIGINT or SIGTERM cancels the command's context
// (a running processor ends its transaction and leaves); the second exits
// at once with status 130.
func Main(c Config) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go onSignals(c.Name, sigs, cancel) // the process's one background goroutine; it ends with the process
	err := c.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %s\n", c.Name, err)
	}
	os.Exit(ExitCode(err))
}

// onSignals turns the first signal into a clean shutdown and the second
// into an immediate exit.
func onSignals(name string, sigs <-chan os.Signal, cancel context.CancelFunc) {
	s := <-sigs
	fmt.Fprintf(os.Stderr, "%s: %s: shutting down cleanly; send it again to exit at once\n", name, s)
	cancel()
	s = <-sigs
	fmt.Fprintf(os.Stderr, "%s: %s again: exiting now\n", name, s)
	os.Exit(130)
}

// Run runs the program described by c with args (the arguments after the
// program's name) until ctx is cancelled or the command ends. Reports and
// help go to stdout, logs and usage hints to stderr. ExitCode maps the
// error to the exit status; Main is Run on the process's arguments.
func (c Config) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	k, err := newKit(c, stderr)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		k.usage(stderr)
		return Usagef("no command given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return k.help(stdout, args[1:])
	case "version", "-version", "--version":
		_, err := fmt.Fprintf(stdout, "%s %s\n", c.Name, k.version())
		return err
	}
	cmd, ok := k.command(args[0])
	if !ok {
		k.usage(stderr)
		return Usagef("unknown command %q", args[0])
	}
	return k.runCommand(ctx, cmd, args[1:], stdout)
}

// envPrefix derives the environment prefix from a program name.
func envPrefix(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, name) + "_"
}
