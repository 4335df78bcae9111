// Command wordcount runs the word-count example (package wordcount) with
// the application kit: `wordcount run`, `wordcount topics create`,
// `wordcount doctor`, `wordcount reset`, `wordcount help`.
package main

import (
	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/examples/wordcount"
)

func main() {
	app.Main(app.Config{
		Name:            "wordcount",
		Summary:         "count the words of each document's lines, exactly once",
		Topology:        wordcount.Topology,
		Group:           wordcount.Group,
		DeadLetterTopic: wordcount.TopicDeadLetter,
	})
}
