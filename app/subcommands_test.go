package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// echoCommand is a command that prints its name and its --to flag.
func echoCommand(name, summary string, subs ...Command) Command {
	return Command{
		Name: name, Summary: summary, Description: "The " + name + " command, described.",
		Setup: func(fs *flag.FlagSet) Runner {
			to := fs.String("to", "", "where to copy")
			return func(_ context.Context, stdout io.Writer) error {
				_, err := fmt.Fprintf(stdout, "%s to=%s\n", name, *to)
				return err
			}
		},
		Commands: subs,
	}
}

// subConfig is wc with `copy` (flags of its own and the subcommands check
// and repair), `db` (subcommands only: db dump) and the hidden old name
// copy-check.
func subConfig() Config {
	c := testConfig()
	check := echoCommand("check", "compare the copy")
	check.Description = "Compare the copy with its source."
	c.Commands = append(c.Commands,
		echoCommand("copy", "copy things", check, echoCommand("repair", "repair the copy")),
		Command{Name: "db", Summary: "database tools", Commands: []Command{echoCommand("dump", "dump the database")}},
		Command{Name: "copy-check", Summary: "old name of copy check", Hidden: true, Setup: check.Setup},
	)
	return c
}

func TestSubcommandsRun(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"the command itself":  {[]string{"copy", "--to", "b"}, "copy to=b\n"},
		"no flags":            {[]string{"copy"}, "copy to=\n"},
		"subcommand":          {[]string{"copy", "check", "--to", "c"}, "check to=c\n"},
		"other subcommand":    {[]string{"copy", "repair"}, "repair to=\n"},
		"group's subcommand":  {[]string{"db", "dump", "--to=x"}, "dump to=x\n"},
		"hidden old name":     {[]string{"copy-check", "--to", "d"}, "check to=d\n"},
		"kit command with it": {[]string{"greet", "--who", "you"}, "hello you\n"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, _, err := runApp(subConfig(), tc.args...)
			require.NoError(t, err)
			require.Equal(t, tc.want, out)
		})
	}
}

// TestSubcommandFlagsFromTheEnvironment: a subcommand's flag reads
// <PREFIX>_<FLAG>, without the command names, and the command line wins.
func TestSubcommandFlagsFromTheEnvironment(t *testing.T) {
	t.Setenv("WC_TO", "env")
	out, _, err := runApp(subConfig(), "copy", "check")
	require.NoError(t, err)
	require.Equal(t, "check to=env\n", out)
	out, _, err = runApp(subConfig(), "copy", "check", "--to", "flag")
	require.NoError(t, err)
	require.Equal(t, "check to=flag\n", out)
}

func TestSubcommandHelp(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args      []string
		want, not []string
	}{
		"command lists its subcommands": {[]string{"copy", "--help"}, []string{
			"usage: wc copy [flags]\n       wc copy <command> [flags]\n", "The copy command, described.",
			"commands:\n  check   compare the copy\n  repair  repair the copy\n", "`wc copy <command> --help`",
			"--to string  (env WC_TO)"}, nil},
		"help command":      {[]string{"help", "copy"}, []string{"wc copy <command> [flags]", "  check "}, nil},
		"command help word": {[]string{"copy", "help"}, []string{"wc copy <command> [flags]"}, nil},
		"subcommand": {[]string{"copy", "check", "--help"}, []string{"usage: wc copy check [flags]\n",
			"Compare the copy with its source.", "--to string  (env WC_TO)"}, []string{"commands:", "repair"}},
		"subcommand -h":   {[]string{"copy", "check", "-h"}, []string{"usage: wc copy check [flags]"}, nil},
		"help subcommand": {[]string{"help", "copy", "repair"}, []string{"usage: wc copy repair [flags]", "The repair command"}, nil},
		"group only": {[]string{"db", "--help"}, []string{"usage: wc db <command> [flags]", "database tools.", "  dump "},
			[]string{"flags (each"}},
		"hidden described": {[]string{"help", "copy-check"}, []string{"usage: wc copy-check [flags]"}, nil},
		"program list": {[]string{"help"}, []string{"  copy ", "  db "},
			[]string{"copy-check", "\n  check", "\n  dump"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, _, err := runApp(subConfig(), tc.args...)
			require.NoError(t, err)
			for _, s := range tc.want {
				require.Contains(t, out, s)
			}
			for _, s := range tc.not {
				require.NotContains(t, out, s)
			}
		})
	}
}

func TestSubcommandUsageErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown subcommand":        {[]string{"copy", "chek"}, `unknown copy command "chek": want check or repair (see ` + "`wc copy --help`)"},
		"unknown after group":       {[]string{"db", "load"}, `unknown db command "load": want dump`},
		"group without subcommand":  {[]string{"db"}, "db: want `wc db dump [flags]`"},
		"group with flags only":     {[]string{"db", "--to", "x"}, "db: want `wc db dump [flags]`"},
		"subcommand unknown flag":   {[]string{"copy", "check", "--nope"}, "unknown flag --nope (see `wc copy check --help`)"},
		"subcommand stray argument": {[]string{"copy", "check", "--to", "a", "b"}, `unexpected argument "b"`},
		"no sub-subcommands":        {[]string{"copy", "check", "deeper"}, `unexpected argument "deeper"`},
		"help unknown subcommand":   {[]string{"help", "copy", "chek"}, `help: unknown copy command "chek"`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, _, err := runApp(subConfig(), tc.args...)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, ExitUsage, ExitCode(err), err.Error())
		})
	}
}

func TestBadSubcommandDeclarations(t *testing.T) {
	t.Parallel()
	ok := echoCommand("ok", "fine")
	for name, tc := range map[string]struct {
		cmds []Command
		want string
	}{
		"no setup, no commands": {[]Command{{Name: "empty"}}, `command "empty" has neither Setup nor Commands`},
		"sub without setup":     {[]Command{echoCommand("a", "", Command{Name: "b"})}, `command "a b" has neither Setup nor Commands`},
		"duplicate sub":         {[]Command{echoCommand("a", "", ok, ok)}, `command "a ok" is declared twice`},
		"clash with the kit":    {[]Command{echoCommand("doctor", "")}, `command "doctor" is declared twice`},
		"flag-like name":        {[]Command{echoCommand("a", "", echoCommand("-x", ""))}, `command "a -x" needs a name of one word`},
		"two words":             {[]Command{echoCommand("a b", "")}, `command "a b" needs a name of one word`},
		"help":                  {[]Command{echoCommand("a", "", echoCommand("help", ""))}, `command "a help" needs a name`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := testConfig()
			c.Commands = tc.cmds
			_, _, err := runApp(c, "help")
			require.ErrorContains(t, err, tc.want)
			require.False(t, errors.Is(err, ErrUsage), "a programming error, not the user's")
		})
	}
}
