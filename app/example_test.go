package app_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/examples/wordcount"
)

// A program's whole main: the word count with run, reset, topics, doctor
// and help, every flag also read from WORDCOUNT_<FLAG>.
func ExampleMain() {
	app.Main(app.Config{
		Name:            "wordcount",
		Summary:         "count the words of each document's lines, exactly once",
		Topology:        wordcount.Topology,
		Group:           wordcount.Group,
		DeadLetterTopic: wordcount.TopicDeadLetter,
	})
}

// Run is Main without the process: here it provisions the word count's
// topics on an in-process kfake cluster, as `wordcount topics create
// --brokers ... --partitions 2` would, then checks them.
func ExampleConfig_Run() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()
	wc := app.Config{
		Name:            "wordcount",
		Topology:        wordcount.Topology,
		Group:           wordcount.Group,
		DeadLetterTopic: wordcount.TopicDeadLetter,
	}
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	ctx := context.Background()
	for _, sub := range []string{"create", "check"} {
		err := wc.Run(ctx, []string{"topics", sub, "--brokers", brokers, "--partitions", "2"}, os.Stdout, os.Stderr)
		fmt.Printf("topics %s: exit status %d\n", sub, app.ExitCode(err))
	}
	// Output:
	// created lines
	// created word-counts
	// created wordcount-dlq
	// created wordcount-words-changelog
	// TOPIC                      ROLE         PARTITIONS  WANT  RF  MIN ISR  CLEANUP
	// lines                      input        2           2     1   1        delete
	// word-counts                output       2           2     1   1        delete
	// wordcount-dlq              dead-letter  2           2     1   1        delete
	// wordcount-words-changelog  changelog    2           2     1   1        compact
	// topics: OK
	// topics create: exit status 0
	// TOPIC                      ROLE         PARTITIONS  WANT  RF  MIN ISR  CLEANUP
	// lines                      input        2           2     1   1        delete
	// word-counts                output       2           2     1   1        delete
	// wordcount-dlq              dead-letter  2           2     1   1        delete
	// wordcount-words-changelog  changelog    2           2     1   1        compact
	// topics: OK
	// topics check: exit status 0
}
