// Package wordcount is the smallest complete application of exactly: it
// counts the words of lines of text, exactly once. Its command,
// examples/wordcount/cmd/wordcount, is a few lines on package app.
//
// The input topic (lines) holds lines of text keyed by a document id. The
// application keeps, per document, how often each word occurred (store
// words: document id -> JSON object word -> count) and, for every line,
// writes to the output topic (word-counts) one record per distinct word of
// the line: key the document id, value the JSON Count with the word's new
// total in that document. A record that is not valid UTF-8 goes to the
// dead-letter topic.
//
// Why per document and not across all documents: a task owns one input
// partition and that partition of its stores, and records are partitioned
// by their key. A global count of a word would need the records re-keyed by
// word and sent through a repartition topic, which the runtime does not
// have yet. Counting per key is what a single-stage topology can do
// honestly: every count is exact, and /state/words/{document} of the HTTP
// API answers with a document's counts from the instance that owns it.
package wordcount

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/exactly-stream/exactly/topology"
)

// Topic, group and store names, before any topic prefix.
const (
	TopicLines      = "lines"         // input: document id -> line of text
	TopicCounts     = "word-counts"   // output: document id -> Count (JSON)
	TopicDeadLetter = "wordcount-dlq" // records that are not text
	Group           = "wordcount"     // consumer group and application id
	StoreWords      = "words"         // document id -> map word -> count
)

// Count is an output record's value: a word's total in the record's
// document after the line that changed it.
type Count struct {
	Word  string `json:"word"`
	Count int64  `json:"count"`
}

// Words splits a line into its words: maximal runs of letters and digits,
// in lower case, in order, repeats kept.
func Words(line string) []string {
	return strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// Topology returns the word-count topology with every topic name prefixed
// by prefix.
func Topology(prefix string) (*topology.Topology, error) {
	b := topology.NewBuilder()
	src := topology.Source(b, "lines", prefix+TopicLines, topology.String(), topology.String())
	words := topology.Store(b, StoreWords, topology.String(), topology.JSON[map[string]int64]())
	out := topology.Sink(b, "counts", prefix+TopicCounts, topology.String(), topology.JSON[Count](), topology.Parents("count"))
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		if !utf8.ValidString(r.Value) {
			return fmt.Errorf("line of %q is not UTF-8", r.Key) // a bad record: dead-lettered
		}
		counts, _, err := words.Get(ctx, r.Key)
		if err != nil {
			return err
		}
		if counts == nil {
			counts = make(map[string]int64)
		}
		var order []string // distinct words in order of first appearance
		for _, w := range Words(r.Value) {
			if counts[w]++; !contains(order, w) {
				order = append(order, w)
			}
		}
		if len(order) == 0 {
			return nil
		}
		if err := words.Put(ctx, r.Key, counts); err != nil {
			return err
		}
		for _, w := range order {
			if err := out.Send(ctx, r.Key, Count{Word: w, Count: counts[w]}); err != nil {
				return err
			}
		}
		return nil
	}, topology.Parents(src.Name()), topology.Stores(words.Name()))
	t, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("building the word-count topology: %w", err)
	}
	return t, nil
}

func contains(s []string, w string) bool {
	for _, x := range s {
		if x == w {
			return true
		}
	}
	return false
}
