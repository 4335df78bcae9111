// Package words counts how often each word occurred across all documents,
// exactly once, with the DSL (package dsl). Its command,
// examples/words/cmd/words, is a few lines on package app.
//
// The input topic (lines) holds lines of text keyed by a document id. The
// words of a line are re-keyed by word; the grouping by word sends them
// through the repartition topic <group>-by-word-repartition (words-by-word-
// repartition by default), which the processor creates with the input's
// partition count, consumes in the same transactions as everything else
// and purges once committed; the task that owns a word counts it (store
// counts, changelog <group>-counts-changelog) and writes its new total to
// the output topic word-counts: key the word, value the count as an
// 8-byte big-endian integer (topology.Int64). A line that is not valid
// UTF-8 goes to the dead-letter topic.
//
// Compare examples/wordcount, which counts per document with a hand-written
// node because it has no re-keying.
package words

import (
	"fmt"
	"unicode/utf8"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/examples/wordcount"
	"github.com/exactly-stream/exactly/topology"
)

// Topic, group and store names, before any topic prefix.
const (
	TopicLines      = "lines"       // input: document id -> line of text
	TopicCounts     = "word-counts" // output: word -> its total (Int64)
	TopicDeadLetter = "words-dlq"   // lines that are not text
	Group           = "words"       // consumer group and application id
	StoreCounts     = "counts"      // word -> total
	GroupingByWord  = "by-word"     // names the repartition topic
)

// RepartitionTopic returns the repartition topic of the application with
// group (its group, after any topic prefix).
func RepartitionTopic(group string) string { return group + "-" + GroupingByWord + "-repartition" }

// Topology returns the topology with every topic name prefixed by prefix.
func Topology(prefix string) (*topology.Topology, error) {
	d := dsl.New(nil, dsl.RequireNames())
	text, send := dsl.FromNode[string, string](d, "validate", dsl.Named("text"))
	lines := dsl.StreamFrom(d, "lines", prefix+TopicLines, topology.String(), topology.String())
	dsl.Process(lines, "validate", func(c *topology.Call, r topology.Record[string, string]) error {
		if !utf8.ValidString(r.Value) {
			return fmt.Errorf("line of %q is not UTF-8", r.Key) // an error dead-letters the line
		}
		return send.SendRecord(c, r)
	})
	words := dsl.FlatMapValues(text, func(_, line string) []string { return wordcount.Words(line) }, dsl.Named("words"))
	byWord := dsl.GroupBy(words, func(_, w string) string { return w }, topology.String(), topology.String(), dsl.Named(GroupingByWord))
	byWord.Count(dsl.Named(StoreCounts)).ToStream(dsl.Named("totals")).To(prefix+TopicCounts, topology.String(), topology.Int64(), dsl.Named("out"))
	t, err := d.Build()
	if err != nil {
		return nil, fmt.Errorf("building the words topology: %w", err)
	}
	return t, nil
}
