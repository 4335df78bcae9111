// Package app is the application kit: it turns one or more topologies into
// a complete command-line program, so that a user's whole main is one call.
//
//	func main() {
//		app.Main(app.Config{
//			Name:     "wordcount",
//			Summary:  "count words, exactly once",
//			Topology: wordcount.Topology,
//		})
//	}
//
// The program then has these commands:
//
//	run      run one instance of a service (the processor, and with
//	         --http-addr an HTTP server with /metrics, /healthz, /readyz
//	         and /state/{store}/{key}, see package httpapi)
//	reset    wipe local state and changelogs, rebuild state from the
//	         group's committed offsets, then run (processor.ResetState)
//	topics   create or check the topics the topologies need
//	         (topics create|check, see package admin)
//	doctor   check brokers, topics, groups' lag and open transactions
//	help     the command list; `help <command>` describes one command
//
// and whatever Config.Commands adds. `--help`, `-h` and `help` print the
// command list, `<command> --help` a command's usage, description and
// flags, `--version` the version.
//
// # Subcommands
//
// A Command may have Commands of its own: `exactly mirror verify --topics t`
// runs the subcommand verify of the command mirror. `<command> --help` (or
// `help <command>`) lists the subcommands with the command's own flags;
// `<command> <subcommand> --help` (or `help <command> <subcommand>`)
// describes the subcommand and its flags. After a command with
// subcommands, a first argument that is not a flag must name one of them:
// anything else is a usage error naming it; flags alone run the command
// itself (its Setup), or are a usage error when it has none. A Hidden
// command runs but is not listed: an old name kept for scripts.
//
// # Flags and the environment
//
// Every flag can also be set by an environment variable named
// <PREFIX>_<FLAG>: the prefix is Config.Name in upper case (EXACTLY_ for
// a program named exactly), the flag in upper case with dashes as
// underscores, so --commit-interval is EXACTLY_COMMIT_INTERVAL. A flag given
// on the command line wins. An invalid value names the flag or the
// variable it came from. The command's name is not part of the variable,
// for subcommands neither: --source-brokers of `exactly mirror verify` is
// EXACTLY_SOURCE_BROKERS, as it is for `exactly mirror`, so commands that
// share a flag share its variable.
//
// # Secured clusters
//
// run, reset, topics and doctor take the connection-security flags of
// package kafkaauth: --tls, --tls-ca-file, --tls-cert-file, --tls-key-file,
// --tls-server-name, --sasl-mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512,
// OAUTHBEARER, AWS_MSK_IAM), --sasl-username, --sasl-password (better set
// as <PREFIX>_SASL_PASSWORD, whose value no message shows),
// --sasl-password-file and --sasl-token-file. A program's own commands add
// them with kafkaauth.RegisterFlags. A broker that refuses the credentials
// or the certificate ends the command at once (WaitForBroker), naming the
// mechanism and the broker.
//
// # Signals
//
// The first SIGINT or SIGTERM ends the open transaction (committed if it
// can be), leaves the group and closes the state; the second exits at
// once with status 130, which is as safe as a crash.
//
// # Exit status
//
// Every command follows one scheme:
//
//	0  success, or help or the version was asked for
//	1  runtime failure: no broker reachable, the processor stopped on an error
//	2  usage or configuration error: unknown command or flag, a bad value
//	   in a flag or environment variable, a missing required flag
//	3  a check found problems: verification found violations, topics
//	   check (or create) found topics that differ from what is needed
//	4  doctor: warnings, nothing critical
//	5  doctor: something critical
//
// Statuses 4 and 5 refine 3 for the doctor, so that monitoring can tell
// a warning from an emergency.
package app
