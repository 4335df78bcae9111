package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// flagSet is a command's flags with where each parsed value came from.
type flagSet struct {
	*flag.FlagSet
	prefix  string            // of the environment variables, with its underscore
	help    string            // the command that describes these flags: "wc run --help"
	aliases map[string]string // an older name of a flag -> the flag's name
	origins map[string]string // flag -> where its value came from, if not "--<flag>"
	failed  *valueError       // the last value a flag refused
}

func newFlagSet(program, name, prefix string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, prefix: prefix, help: program + " " + name + " --help",
		aliases: map[string]string{}, origins: map[string]string{}}
}

// alias declares old as another name of flag name. A value given by
// either name on the command line wins over both environment variables;
// both names with different values are a usage error.
func (fs *flagSet) alias(old, name, usage string) {
	fs.Var(&aliasValue{}, old, usage)
	fs.aliases[old] = name
}

// aliasValue holds what an alias was given; parse sets its flag with it.
type aliasValue struct{ raw string }

func (a *aliasValue) String() string {
	if a == nil {
		return ""
	}
	return a.raw
}

func (a *aliasValue) Set(s string) error { a.raw = s; return nil }

// envName returns the environment variable of flag name.
func (fs *flagSet) envName(name string) string {
	return fs.prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// origin names where flag name's value came from: the name used on the
// command line (the flag's or an alias's) or the environment variable
// with its value.
func (fs *flagSet) origin(name string) string {
	if o, ok := fs.origins[name]; ok {
		return o
	}
	return "--" + name
}

// given reports whether flag name was given, on the command line (by
// its name or an alias) or by an environment variable.
func (fs *flagSet) given(name string) bool {
	_, ok := fs.origins[name]
	return ok
}

// usagef returns a usage error about flag name's value, naming its origin.
func (fs *flagSet) usagef(name, format string, args ...any) error {
	return Usagef("%s: %s", fs.origin(name), fmt.Sprintf(format, args...))
}

// parse parses args, then fills every flag not given on the command line
// (by its name or an alias) from its environment variable or an alias's.
// A bad value names the flag or the variable, and the value. It returns
// flag.ErrHelp for -h and --help.
func (fs *flagSet) parse(args []string) error {
	fs.VisitAll(func(f *flag.Flag) { f.Value = fs.checked(f.Name, f.Value) })
	if err := fs.Parse(args); err != nil {
		return fs.parseError(args, err)
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q", fs.Arg(0))
	}
	given := map[string][]string{} // flag -> the names it was given by
	fs.Visit(func(f *flag.Flag) {
		name := fs.canonical(f.Name)
		given[name] = append(given[name], f.Name)
	})
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if _, isAlias := fs.aliases[f.Name]; err != nil || isAlias {
			return
		}
		if names := given[f.Name]; len(names) > 0 {
			err = fs.fromCommandLine(f.Name, names)
		} else {
			err = fs.fromEnv(f.Name)
		}
	})
	return err
}

// canonical returns the flag that name is, itself or through an alias.
func (fs *flagSet) canonical(name string) string {
	if n, ok := fs.aliases[name]; ok {
		return n
	}
	return name
}

// names returns flag name and its aliases, the flag first.
func (fs *flagSet) names(name string) []string {
	out := []string{name}
	for old, n := range fs.aliases {
		if n == name {
			out = append(out, old)
		}
	}
	slices.Sort(out[1:])
	return out
}

// fromCommandLine settles flag name, given on the command line by names
// (itself or aliases): different values are an error, an alias's value
// is set on the flag.
func (fs *flagSet) fromCommandLine(name string, names []string) error {
	used, v := names[0], fs.Lookup(names[0]).Value.String()
	for _, n := range names[1:] {
		if w := fs.Lookup(n).Value.String(); w != v {
			return Usagef("--%s %q and --%s %q name one setting: give one", used, v, n, w)
		}
	}
	fs.origins[name] = "--" + used
	if used == name {
		return nil
	}
	if err := fs.Set(name, v); err != nil {
		return fs.flagError(err, used)
	}
	return nil
}

// fromEnv sets flag name from its environment variable or an alias's;
// variables set to different values are an error.
func (fs *flagSet) fromEnv(name string) error {
	var env, v string
	for _, n := range fs.names(name) {
		e := fs.envName(n)
		w, ok := os.LookupEnv(e)
		switch {
		case !ok:
		case env == "":
			env, v = e, w
		case w != v:
			return Usagef("environment variables %s=%s and %s=%s name one setting: set one", env, showValue(v), e, showValue(w))
		}
	}
	if env == "" {
		return nil
	}
	fs.origins[name] = "environment variable " + env + "=" + showValue(v)
	if isSecret(fs.Lookup(name).Value) {
		fs.origins[name] = "environment variable " + env
	}
	if err := fs.Set(name, v); err != nil {
		if ve, ok := errors.AsType[*valueError](err); ok {
			return Usagef("environment variable %s=%q: %s", env, v, ve.problem)
		}
		return fmt.Errorf("%w: environment variable %s=%q: %w", ErrUsage, env, v, err)
	}
	return nil
}

// isSecret reports whether v holds a secret (a password) that must never
// be shown: its type says so with an IsSecret method.
func isSecret(v flag.Value) bool {
	if c, ok := v.(checkedBool); ok {
		v = c.Value
	}
	if c, ok := v.(*checkedValue); ok {
		v = c.Value
	}
	s, ok := v.(interface{ IsSecret() bool })
	return ok && s.IsSecret()
}

// parseError turns an error of flag.Parse into a usage error that names
// the flag as given and says what was wrong.
func (fs *flagSet) parseError(args []string, err error) error {
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case fs.failed != nil:
		return fs.flagError(fs.failed, fs.failed.name)
	}
	// Parse stops right after the argument it refused (and any value of
	// it it took).
	arg := args[len(args)-len(fs.Args())-1]
	name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
	switch {
	case name == "" || strings.HasPrefix(name, "-") || strings.HasPrefix(arg, "---"):
		return Usagef("bad flag syntax %q (see `%s`)", arg, fs.help)
	case fs.Lookup(name) == nil:
		return Usagef("unknown flag --%s (see `%s`)", name, fs.help)
	}
	return Usagef("--%s needs a value", name)
}

// flagError formats a value a flag refused on the command line, given by
// name (the flag's or an alias's).
func (fs *flagSet) flagError(err error, name string) error {
	ve, ok := errors.AsType[*valueError](err)
	if !ok {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if ve.want {
		return Usagef("--%s: %q is %s", name, ve.value, ve.problem)
	}
	return Usagef("--%s: %q: %s", name, ve.value, ve.problem)
}

// valueError is a value a flag refused: problem says why, as "not a
// duration (e.g. 100ms, 2s)" when want (the flag's type is known), else
// as the flag's own error.
type valueError struct {
	name, value, problem string
	want                 bool
}

func (e *valueError) Error() string { return fmt.Sprintf("--%s: %q: %s", e.name, e.value, e.problem) }

// checked wraps flag name's value so that a value it refuses is recorded
// and described (valueError).
func (fs *flagSet) checked(name string, v flag.Value) flag.Value {
	c := &checkedValue{Value: v, fs: fs, name: name}
	if b, ok := v.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return checkedBool{c}
	}
	return c
}

type checkedValue struct {
	flag.Value
	fs   *flagSet
	name string
}

func (c *checkedValue) Set(s string) error {
	err := c.Value.Set(s)
	if err == nil {
		return nil
	}
	ve := &valueError{name: c.name, value: s, problem: err.Error()}
	if p := problem(c.Value, s); p != "" {
		ve.problem, ve.want = p, true
	}
	c.fs.failed = ve
	return ve
}

type checkedBool struct{ *checkedValue }

func (checkedBool) IsBoolFlag() bool { return true }

// problem says what is wrong with s for a value of v's type, "" if the
// type is not one of the flag package's.
func problem(v flag.Value, s string) string {
	g, ok := v.(flag.Getter)
	if !ok {
		return ""
	}
	_, ierr := strconv.ParseInt(s, 0, 64)
	_, uerr := strconv.ParseUint(s, 0, 64)
	_, ferr := strconv.ParseFloat(s, 64)
	switch g.Get().(type) {
	case time.Duration:
		return "not a duration (e.g. 100ms, 2s)"
	case bool:
		return "not a boolean (true or false)"
	case int, int64:
		if errors.Is(ierr, strconv.ErrRange) {
			return "out of range"
		}
		return "not an integer"
	case uint, uint64:
		if errors.Is(uerr, strconv.ErrRange) {
			return "out of range"
		}
		return "not a non-negative integer"
	case float64:
		if errors.Is(ferr, strconv.ErrRange) {
			return "out of range"
		}
		return "not a number"
	}
	return ""
}

// showValue is a value as an origin shows it: bare if it is one plain
// word, else quoted.
func showValue(v string) string {
	if v == "" || strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == '"' || r == '\'' }) {
		return strconv.Quote(v)
	}
	return v
}

// printFlags writes every flag with its type, its environment variable,
// its usage and its default. A usage that states its own default
// ("(default: a random seed)") is printed as it is: a per-run default
// such as a random seed or the host name would mislead.
func (fs *flagSet) printFlags(w io.Writer) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		if name, ok := fs.aliases[f.Name]; ok {
			typ, _ = flag.UnquoteUsage(fs.Lookup(name))
		}
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
			return nil, fs.usagef("log-level", "want debug, info, warn or error, got %q", *level)
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
