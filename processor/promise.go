package processor

import (
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// firstErr keeps the first error of a transaction's produce promises: what
// kgo.FirstErrPromise does, without its allocation per record.
// FirstErrPromise.Promise returns a method value, a closure allocated at
// every call, and a transaction asks for one per output and per changelog
// record; firstErr binds its promise once. promise is called on the
// transaction's loop only; the promises run on kgo's goroutines.
type firstErr struct {
	wg   sync.WaitGroup
	once atomic.Bool
	err  error
	fn   func(*kgo.Record, error) // done, bound once
}

// promise returns the promise of one more record; Err waits for it.
func (f *firstErr) promise() func(*kgo.Record, error) {
	if f.fn == nil {
		f.fn = f.done
	}
	f.wg.Add(1)
	return f.fn
}

// add counts one more record whose promise calls done itself.
func (f *firstErr) add() { f.wg.Add(1) }

func (f *firstErr) done(_ *kgo.Record, err error) {
	defer f.wg.Done()
	if err != nil && !f.once.Swap(true) {
		f.err = err
	}
}

// Err waits for every promise handed out, then returns the first error.
func (f *firstErr) Err() error {
	f.wg.Wait()
	return f.err
}
