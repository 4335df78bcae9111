package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/mirror"
)

// mirrorTranslateCommand is the subcommand `exactly mirror translate`: it
// belongs in mirrorCommand.Commands (cmd/exactly/mirror.go).
var mirrorTranslateCommand = app.Command{
	Name:    "translate",
	Summary: "translate consumer groups' source offsets to target offsets for failover",
	Description: "Translate the offsets each --group committed on the source cluster into offsets on the target " +
		"cluster, through the sync points the mirror --name keeps in its offsets topic, and print them per " +
		"partition. A consumer that resumes on the target at a translated offset reads exactly the copies of the " +
		"records it had not consumed: nothing lost, nothing repeated, as long as only the mirror writes the " +
		"target topics and the group is stopped. With --commit the translated offsets are committed into the " +
		"same group on the target, which must have no active members; an offset is never moved backwards " +
		"without --force. It exits 3 when --commit was asked and a partition is not translatable (not mirrored " +
		"that far yet, no sync point, records deleted, or an inconsistent target); then nothing is committed.",
	Setup: mirrorTranslateSetup,
}

// listFlag is a repeatable flag whose values may also be comma lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func mirrorTranslateSetup(fs *flag.FlagSet) app.Runner {
	source := fs.String("source-brokers", "", "comma-separated seed brokers of the source cluster (required)")
	target := fs.String("target-brokers", "", "comma-separated seed brokers of the target cluster (required)")
	name := fs.String("name", "mirror", "the mirror's name: its offsets topic is <name>-mirror-offsets on the target")
	prefix := fs.String("rename-prefix", "", "the mirror's prefix of every target topic name")
	topics := fs.String("topics", "", "comma-separated source topics to translate (default: every topic the group committed)")
	var groups listFlag
	fs.Var(&groups, "group", "consumer group to translate (repeatable, or a comma list; required)")
	commit := fs.Bool("commit", false, "commit the translated offsets into the groups on the target")
	force := fs.Bool("force", false, "with --commit, also move a target group's committed offset backwards")
	readTimeout := fs.Duration("read-timeout", time.Minute, "bound on each read of the source, the target and the offsets topic")
	timeout := connectTimeoutFlag(fs)
	sec := &mirrorFlags{sourceSec: kafkaauth.RegisterFlags(fs, "source-"), targetSec: kafkaauth.RegisterFlags(fs, "target-")}
	return func(ctx context.Context, stdout io.Writer) error {
		switch {
		case len(app.SplitBrokers(*source)) == 0:
			return app.Usagef("--source-brokers (or EXACTLY_SOURCE_BROKERS) is required")
		case len(app.SplitBrokers(*target)) == 0:
			return app.Usagef("--target-brokers (or EXACTLY_TARGET_BROKERS) is required")
		case len(groups) == 0:
			return app.Usagef("--group (or EXACTLY_GROUP) is required")
		case *force && !*commit:
			return app.Usagef("--force only applies with --commit")
		case *readTimeout <= 0:
			return app.Usagef("--read-timeout: want a positive duration, got %s", *readTimeout)
		}
		srcSec, tgtSec, err := sec.security()
		if err != nil {
			return err
		}
		src, err := connect(ctx, *source, *timeout, srcSec...)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		defer src.Close()
		tgt, err := connect(ctx, *target, *timeout, tgtSec...)
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		defer tgt.Close()
		opts := mirror.TranslateOptions{RenamePrefix: *prefix, Timeout: *readTimeout}
		if *topics != "" {
			var l listFlag
			_ = l.Set(*topics)
			opts.Topics = l
		}
		t := &translateRun{src: src, tgt: tgt, name: *name, opts: opts, stdout: stdout}
		return t.run(ctx, groups, *commit, mirror.CommitOptions{Force: *force})
	}
}

// translateRun is one run of the command.
type translateRun struct {
	src, tgt *kgo.Client
	name     string
	opts     mirror.TranslateOptions
	stdout   io.Writer
}

// run translates every group and prints it; with commit, and only if
// every group translated, it commits each group's offsets on the target.
func (t *translateRun) run(ctx context.Context, groups []string, commit bool, copts mirror.CommitOptions) error {
	var trs []*mirror.Translation
	bad := 0
	for _, g := range groups {
		tr, err := mirror.TranslateGroup(ctx, t.src, t.tgt, t.name, g, t.opts)
		if err != nil {
			return fmt.Errorf("translating group %s: %w", g, err)
		}
		if _, err := tr.WriteTo(t.stdout); err != nil {
			return err
		}
		bad += len(tr.Untranslatable())
		trs = append(trs, tr)
	}
	if !commit {
		return nil
	}
	if bad > 0 {
		return fmt.Errorf("%w: %d partitions not translatable; nothing committed", app.ErrViolations, bad)
	}
	var errs []error
	for _, tr := range trs {
		done, err := mirror.CommitTranslation(ctx, t.tgt, tr.Group, tr, copts)
		if errors.Is(err, mirror.ErrOffsetBackwards) {
			err = fmt.Errorf("%w (--force commits anyway)", err)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(t.stdout, "group %s: committed %d offsets on the target\n", tr.Group, len(done))
	}
	return errors.Join(errs...)
}
