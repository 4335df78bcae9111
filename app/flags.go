package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// flagSet is a command's flags with where each parsed value came from.
type flagSet struct {
	*flag.FlagSet
	prefix  string          // of the environment variables, with its underscore
	fromEnv map[string]bool // flags whose value came from the environment
}

func newFlagSet(name, prefix string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, prefix: prefix, fromEnv: map[string]bool{}}
}

// envName returns the environment variable of flag name.
func (fs *flagSet) envName(name string) string {
	return fs.prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// origin names where flag name's value came from: its environment
// variable or the flag itself.
func (fs *flagSet) origin(name string) string {
	if fs.fromEnv[name] {
		return fs.envName(name)
	}
	return "--" + name
}

// usagef returns a usage error about flag name's value, naming its origin.
func (fs *flagSet) usagef(name, format string, args ...any) error {
	return Usagef("%s: %s", fs.origin(name), fmt.Sprintf(format, args...))
}

// parse parses args, then fills every flag not given on the command line
// from its environment variable. A bad value names the flag or the
// variable. It returns flag.ErrHelp for -h and --help.
func (fs *flagSet) parse(args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q", fs.Arg(0))
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := fs.envName(f.Name)
		v, ok := os.LookupEnv(env)
		if err != nil || set[f.Name] || !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("%w: environment variable %s: %w", ErrUsage, env, serr)
		}
		fs.fromEnv[f.Name] = true
	})
	return err
}

// printFlags writes every flag with its type, its environment variable,
// its usage and its default. A usage that states its own default
// ("(default: a random seed)") is printed as it is: a per-run default
// such as a random seed or the host name would mislead.
func (fs *flagSet) printFlags(w io.Writer) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if typ != "" {
			head += " " + typ
		}
		fmt.Fprintf(w, "%s  (env %s)\n      %s", head, fs.envName(f.Name), usage)
		if !strings.Contains(usage, "(default") && !zeroDefault(f.DefValue) {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func zeroDefault(v string) bool { return v == "" || v == "0" || v == "false" }

// logFlags adds --log-level and --log-format and returns the constructor
// of the logger they describe, which writes to w.
func logFlags(fs *flagSet, w io.Writer) func() (*slog.Logger, error) {
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	return func() (*slog.Logger, error) {
		var l slog.Level
		if err := l.UnmarshalText([]byte(*level)); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUsage, fs.origin("log-level"), err)
		}
		opts := &slog.HandlerOptions{Level: l}
		switch *format {
		case "text":
			return slog.New(slog.NewTextHandler(w, opts)), nil
		case "json":
			return slog.New(slog.NewJSONHandler(w, opts)), nil
		}
		return nil, fs.usagef("log-format", "want text or json, got %q", *format)
	}
}

// SplitBrokers splits a comma-separated broker list, dropping blanks.
func SplitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}
