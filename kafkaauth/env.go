package kafkaauth

import (
	"flag"
	"slices"
	"strings"
)

// Environ returns environ (NAME=value entries, as os.Environ gives them)
// with c in the environment variables through which a program of package
// app reads the flags RegisterFlags(fs, flagPrefix) declares: envPrefix
// is the program's ("EXACTLY_"), so --source-sasl-username is
// EXACTLY_SOURCE_SASL_USERNAME. Every such variable environ held is
// dropped first, so the child connects as c says whatever the parent's
// environment held; a setting c leaves empty gets no variable.
//
// It is how a program hands its connection settings to a child process:
// a password goes into the child's environment, which only its owner (and
// root) can read, never onto its command line, which every user of the
// machine sees in ps. AWS_MSK_IAM's AWS_* variables are left as environ
// has them.
func (c Config) Environ(environ []string, envPrefix, flagPrefix string) []string {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	f := RegisterFlags(fs, flagPrefix)
	f.c = c
	set := make(map[string]string)
	var names []string
	fs.VisitAll(func(fl *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		names = append(names, name)
		v := fl.Value.String()
		if _, ok := fl.Value.(*secretValue); ok {
			v = string(c.SASL.Password) // String redacts it
		}
		if v != fl.DefValue {
			set[name] = v
		}
	})
	out := make([]string, 0, len(environ)+len(set))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	for _, name := range names { // sorted by name: a stable result
		if v, ok := set[name]; ok {
			out = append(out, name+"="+v)
		}
	}
	return out
}
