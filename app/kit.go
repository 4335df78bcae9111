package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/exactly-stream/exactly/kafkaauth"
)

// kit is a Config made ready to run: its services normalised and its
// commands, the kit's and the program's, in one list.
type kit struct {
	cfg      Config
	prefix   string // of the environment variables
	services []Service
	commands []*command
	stderr   io.Writer // of the logs
}

// command is one command of the program, or a subcommand of one.
type command struct {
	name        string
	path        string // the command's words after the program's name: "mirror verify"
	summary     string
	description string
	hidden      bool                                 // not in the command list
	subs        []string                             // the subcommands it requires first (topics: create, check)
	children    []*command                           // a program command's subcommands (Command.Commands)
	setup       func(fs *flagSet, sub string) Runner // nil for a command that only groups children
}

func newKit(c Config, stderr io.Writer) (*kit, error) {
	if c.Name == "" {
		return nil, errors.New("app: Config.Name is required")
	}
	k := &kit{cfg: c, prefix: envPrefix(c.Name), stderr: stderr, services: c.Services}
	if len(k.services) == 0 {
		k.services = []Service{{Name: c.Name, Topology: c.Topology, Group: c.Group, DeadLetterTopic: c.DeadLetterTopic}}
	}
	for i, s := range k.services {
		if s.Topology == nil {
			return nil, fmt.Errorf("app: service %q has no Topology", s.Name)
		}
		if s.Name == "" || slices.ContainsFunc(k.services[:i], func(o Service) bool { return o.Name == s.Name }) {
			return nil, fmt.Errorf("app: service %d needs a unique name, got %q", i, s.Name)
		}
		if s.Group == "" {
			k.services[i].Group = s.Name
		}
	}
	k.commands = k.kitCommands()
	for _, c := range k.commands {
		c.path = c.name
	}
	own, err := programCommands(c.Commands, "", k.commands)
	if err != nil {
		return nil, err
	}
	k.commands = append(k.commands, own...)
	return k, nil
}

// programCommands converts a program's commands (or a command's
// subcommands, under parent) and checks their names against taken (the
// commands beside them).
func programCommands(cs []Command, parent string, taken []*command) ([]*command, error) {
	var out []*command
	for _, c := range cs {
		path := strings.TrimSpace(parent + " " + c.Name)
		switch {
		case c.Name == "" || strings.HasPrefix(c.Name, "-") || strings.ContainsFunc(c.Name, unicode.IsSpace) || isHelp(c.Name):
			return nil, fmt.Errorf("app: command %q needs a name of one word, not starting with a dash, other than help", path)
		case slices.ContainsFunc(append(taken, out...), func(o *command) bool { return o.name == c.Name }):
			return nil, fmt.Errorf("app: command %q is declared twice", path)
		case c.Setup == nil && len(c.Commands) == 0:
			return nil, fmt.Errorf("app: command %q has neither Setup nor Commands", path)
		}
		cmd := &command{name: c.Name, path: path, summary: c.Summary, description: c.Description, hidden: c.Hidden}
		if setup := c.Setup; setup != nil {
			cmd.setup = func(fs *flagSet, _ string) Runner { return setup(fs.FlagSet) }
		}
		children, err := programCommands(c.Commands, path, nil)
		if err != nil {
			return nil, err
		}
		cmd.children = children
		out = append(out, cmd)
	}
	return out, nil
}

func (k *kit) command(name string) (*command, bool) {
	return findCommand(k.commands, name)
}

func findCommand(cs []*command, name string) (*command, bool) {
	i := slices.IndexFunc(cs, func(c *command) bool { return c.name == name })
	if i < 0 {
		return nil, false
	}
	return cs[i], true
}

// childNames lists cmd's subcommands that the command list shows.
func (cmd *command) childNames() []string {
	var out []string
	for _, c := range cmd.children {
		if !c.hidden {
			out = append(out, c.name)
		}
	}
	return out
}

// runCommand parses cmd's flags from args and the environment, then runs
// it. --help prints the command's help to stdout and succeeds.
func (k *kit) runCommand(ctx context.Context, cmd *command, args []string, stdout io.Writer) error {
	if len(cmd.children) > 0 {
		switch {
		case len(args) > 0 && isHelp(args[0]):
			return k.commandHelp(stdout, cmd)
		case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
			child, ok := findCommand(cmd.children, args[0])
			if !ok {
				return Usagef("unknown %s command %q: want %s (see `%s %s --help`)", cmd.path, args[0], joinOr(cmd.childNames()), k.cfg.Name, cmd.path)
			}
			return k.runCommand(ctx, child, args[1:], stdout)
		case cmd.setup == nil:
			return Usagef("%s: want `%s %s %s [flags]`", cmd.path, k.cfg.Name, cmd.path, strings.Join(cmd.childNames(), "|"))
		}
	}
	sub := ""
	if len(cmd.subs) > 0 {
		switch {
		case len(args) == 0:
			return Usagef("%s: want `%s %s %s [flags]`", cmd.name, k.cfg.Name, cmd.name, strings.Join(cmd.subs, "|"))
		case isHelp(args[0]):
			return k.commandHelp(stdout, cmd)
		case !slices.Contains(cmd.subs, args[0]):
			return Usagef("unknown %s command %q: want %s", cmd.name, args[0], joinOr(cmd.subs))
		}
		sub, args = args[0], args[1:]
	}
	fs := newFlagSet(k.cfg.Name, strings.TrimSpace(cmd.path+" "+sub), k.prefix)
	run := cmd.setup(fs, sub)
	if err := fs.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return k.commandHelp(stdout, cmd)
		}
		return err
	}
	return flagErrors(fs, run(ctx, stdout))
}

// flagErrors turns a *kafkaauth.FlagError into a usage error naming where
// the flag's value came from (the flag or its environment variable).
func flagErrors(fs *flagSet, err error) error {
	if fe, ok := errors.AsType[*kafkaauth.FlagError](err); ok {
		return Usagef("%s: %s", fs.origin(fe.Flag), fe.Problem)
	}
	return err
}

// joinOr lists words as "a, b or c".
func joinOr(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// usage writes the command list.
func (k *kit) usage(w io.Writer) {
	if k.cfg.Summary != "" {
		fmt.Fprintf(w, "%s: %s\n\n", k.cfg.Name, k.cfg.Summary)
	}
	fmt.Fprintf(w, "usage: %s <command> [flags]\n\ncommands:\n", k.cfg.Name)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range k.commands {
		if !c.hidden {
			fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(tw, "  help\tthis list; `help <command>` (or `<command> --help`) describes a command and its flags\n")
	tw.Flush()
}

// help writes the command list with the environment and the exit
// statuses, or with an argument a command's help.
func (k *kit) help(w io.Writer, args []string) error {
	if len(args) > 0 {
		cmd, ok := k.command(args[0])
		if !ok {
			return Usagef("help: unknown command %q", args[0])
		}
		for _, a := range args[1:] {
			child, ok := findCommand(cmd.children, a)
			if !ok {
				return Usagef("help: unknown %s command %q", cmd.path, a)
			}
			cmd = child
		}
		return k.commandHelp(w, cmd)
	}
	k.usage(w)
	fmt.Fprintf(w, "\nEvery flag can also be set by an environment variable %s<FLAG> (upper case,\n"+
		"dashes as underscores: --commit-interval is %sCOMMIT_INTERVAL); a flag on\n"+
		"the command line wins. %s --version prints the version.\n", k.prefix, k.prefix, k.cfg.Name)
	_, err := io.WriteString(w, exitStatuses)
	return err
}

// exitStatuses is the exit-status scheme of the package documentation.
const exitStatuses = `
exit status:
  0  success, or help or the version was asked for
  1  runtime failure: no broker reachable, the processor stopped on an error
  2  usage or configuration error: unknown command or flag, a bad value in a
     flag or environment variable, a missing required flag
  3  a check found problems: verification found violations, topics check (or
     create) found topics that differ from what is needed
  4  doctor: warnings, nothing critical
  5  doctor: something critical
`

// commandHelp writes a command's usage lines, description, subcommands
// and flags.
func (k *kit) commandHelp(w io.Writer, cmd *command) error {
	line := k.cfg.Name + " " + cmd.path
	if len(cmd.subs) > 0 {
		line += " " + strings.Join(cmd.subs, "|")
	}
	switch {
	case len(cmd.children) == 0:
		fmt.Fprintf(w, "usage: %s [flags]\n\n", line)
	case cmd.setup == nil:
		fmt.Fprintf(w, "usage: %s <command> [flags]\n\n", line)
	default:
		fmt.Fprintf(w, "usage: %s [flags]\n       %s <command> [flags]\n\n", line, line)
	}
	if d := cmd.description; d != "" {
		fmt.Fprintf(w, "%s\n\n", wrap(strings.TrimSpace(d), 78))
	} else {
		fmt.Fprintf(w, "%s.\n\n", cmd.summary)
	}
	if len(cmd.childNames()) > 0 {
		fmt.Fprintln(w, "commands:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, c := range cmd.children {
			if !c.hidden {
				fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
			}
		}
		tw.Flush()
		fmt.Fprintf(w, "`%s <command> --help` describes a command and its flags.\n\n", line)
	}
	if cmd.setup == nil {
		return nil
	}
	sub := ""
	if len(cmd.subs) > 0 {
		sub = cmd.subs[0]
	}
	fs := newFlagSet(k.cfg.Name, cmd.path, k.prefix)
	cmd.setup(fs, sub)
	fmt.Fprintln(w, "flags (each also read from the environment variable shown):")
	fs.printFlags(w)
	return nil
}

// version is Config.Version, else the build's module version and VCS
// revision.
func (k *kit) version() string {
	if k.cfg.Version != "" {
		return k.cfg.Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v + " " + bi.GoVersion
}

// kitCommands are the commands every program has.
func (k *kit) kitCommands() []*command {
	return []*command{
		{
			name: "run", summary: "run one instance of " + k.serviceWord(),
			description: "Run one instance of " + k.serviceWord() + ": restore its local state, join the consumer group " +
				"and process the input in transactions, exactly once, until SIGINT or SIGTERM (the open transaction " +
				"then ends and the instance leaves the group; a second signal exits at once). Instances of one service " +
				"share the input's partitions. With --http-addr it serves /metrics, /healthz, /readyz and " +
				"/state/{store}/{key}. It waits at most --connect-timeout for a broker and creates nothing before one answers.",
			setup: k.runSetup(false),
		},
		{
			name: "reset", summary: "wipe local state and changelogs, rebuild state from the committed offsets, then run",
			description: "Reset the state of " + k.serviceWord() + ", then run as the run command does: delete the store " +
				"changelogs, wipe this instance's local state, create the changelogs again and rebuild the state from the " +
				"group's committed offsets on. It is the way out after an operator moved the group's offsets back. " +
				"Run it on one instance while every other instance is stopped, then start the others with run.",
			setup: k.runSetup(true),
		},
		{
			name: "topics", summary: "create or check the topics the topologies need (topics create|check)",
			description: "Create (topics create) or check (topics check) every topic the topologies read and write: " +
				"inputs, outputs, dead-letter topics and compacted store changelogs, with the partition counts the " +
				"runtime needs (a changelog or output has its input's count). It exits 3 when some topic differs.",
			subs: []string{"create", "check"}, setup: k.topicsSetup,
		},
		{
			name: "doctor", summary: "check brokers, topics, groups' lag and open transactions",
			description: "Check the cluster for the topologies: brokers reachable, topics as they must be, each group's " +
				"members and lag, and transactions left open that hold back read_committed consumers. It exits 0 when " +
				"all is well, 4 on warnings and 5 when something is critical.",
			setup: k.doctorSetup,
		},
	}
}

// serviceWord names the services in help: "the wordcount service" or
// "a service (order or payment)".
func (k *kit) serviceWord() string {
	if len(k.services) == 1 {
		return "the " + k.services[0].Name + " service"
	}
	return "a service (" + k.serviceNames() + ", chosen with --service)"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// wrap breaks text into lines of at most width characters at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(text) {
		if i > 0 && n+1+len(word) > width {
			b.WriteByte('\n')
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}
