// Command words runs the word count across documents (package words) with
// the application kit: `words run`, `words topics create`, `words doctor`,
// `words reset`, `words help`.
package main

import (
	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/examples/words"
)

func main() {
	app.Main(app.Config{
		Name:            "words",
		Summary:         "count every word across all documents, exactly once, through a repartition topic",
		Topology:        words.Topology,
		Group:           words.Group,
		DeadLetterTopic: words.TopicDeadLetter,
	})
}
