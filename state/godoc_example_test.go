package state_test

import (
	"fmt"
	"log"
	"os"

	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// Example shows the life of one transaction's state writes, as the
// processor drives it: staged writes that reads see at once, applied with
// the changelog and input checkpoints in one atomic Pebble batch when the
// Kafka transaction committed; and a typed View reading the committed data
// (what a tool inspecting a stopped instance's state directory does).
func Example() {
	dir, err := os.MkdirTemp("", "state-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	s := db.NewStaged()
	enc := topology.Int64()
	for _, page := range []string{"/home", "/about", "/home"} {
		old, _, err := s.Get("visits", 0, []byte(page)) // sees the staged writes before it
		if err != nil {
			log.Fatal(err)
		}
		var n int64
		if old != nil {
			if n, err = enc.Decode(old); err != nil {
				log.Fatal(err)
			}
		}
		v, _ := enc.Encode(n + 1)
		if err := s.Put("visits", 0, []byte(page), v); err != nil {
			log.Fatal(err)
		}
	}
	// The Kafka transaction committed: its changelog records ended at
	// offset 2 and its input at offset 2.
	if err := s.SetCheckpoint("visits", 0, 2); err != nil {
		log.Fatal(err)
	}
	if err := s.SetInputCheckpoint("page-views", 0, 2); err != nil {
		log.Fatal(err)
	}
	if err := s.Apply(); err != nil {
		log.Fatal(err)
	}

	view := state.NewView(db, "visits", 0, topology.String(), topology.Int64())
	all, errf := view.All()
	for page, n := range all {
		fmt.Println(page, n)
	}
	if err := errf(); err != nil {
		log.Fatal(err)
	}
	off, ok, err := db.Checkpoint("visits", 0)
	fmt.Println("changelog checkpoint", off, ok, err)
	// Output:
	// /about 1
	// /home 2
	// changelog checkpoint 2 true <nil>
}
