package orders

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/topology"
)

// memRuntime is an in-memory topology.Runtime for one task: writes and
// emits are staged per record and applied by commit or dropped by discard,
// as the processor does per transaction.
type memRuntime struct {
	state  map[string]map[string][]byte // store -> key -> value
	staged map[string]map[string][]byte // nil value: deleted
	emits  []*kgo.Record
	out    []*kgo.Record // committed emits
}

func newMemRuntime() *memRuntime {
	return &memRuntime{state: make(map[string]map[string][]byte), staged: make(map[string]map[string][]byte)}
}

func (m *memRuntime) Get(store string, key []byte) ([]byte, bool, error) {
	if v, ok := m.staged[store][string(key)]; ok {
		return v, v != nil, nil
	}
	v, ok := m.state[store][string(key)]
	return v, ok, nil
}

func (m *memRuntime) Put(store string, key, value []byte) error {
	m.stage(store)[string(key)] = value
	return nil
}

func (m *memRuntime) Delete(store string, key []byte) error {
	m.stage(store)[string(key)] = nil
	return nil
}

func (m *memRuntime) Range(string, []byte, []byte, func(k, v []byte) bool) error {
	return errors.New("memRuntime: no ranges")
}

func (m *memRuntime) Emit(topic string, key, value []byte, _ time.Time, _ []topology.Header) error {
	m.emits = append(m.emits, &kgo.Record{Topic: topic, Key: key, Value: value})
	return nil
}

func (m *memRuntime) stage(store string) map[string][]byte {
	if m.staged[store] == nil {
		m.staged[store] = make(map[string][]byte)
	}
	return m.staged[store]
}

func (m *memRuntime) commit() {
	for store, kvs := range m.staged {
		if m.state[store] == nil {
			m.state[store] = make(map[string][]byte)
		}
		for k, v := range kvs {
			if v == nil {
				delete(m.state[store], k)
			} else {
				m.state[store][k] = v
			}
		}
	}
	m.out = append(m.out, m.emits...)
	m.discard()
}

func (m *memRuntime) discard() {
	clear(m.staged)
	m.emits = nil
}

// process runs one input through top, committing or discarding its effects.
func (m *memRuntime) process(top *topology.Topology, in *topology.Input) error {
	err := top.Dispatch(context.Background(), m, in)
	if err != nil {
		m.discard()
		return err
	}
	m.commit()
	return nil
}

// memPipeline runs a topology over records like the runtime does: one task
// per input partition, bad records dead-lettered with the runtime's headers.
type memPipeline struct {
	top   *topology.Topology
	dlqTo string // dead-letter topic
	tasks map[int32]*memRuntime
	out   []*kgo.Record
	dlq   []*kgo.Record
}

func newMemPipeline(top *topology.Topology, dlq string) *memPipeline {
	return &memPipeline{top: top, dlqTo: dlq, tasks: make(map[int32]*memRuntime)}
}

func (p *memPipeline) run(t *testing.T, recs []*kgo.Record) {
	t.Helper()
	for _, r := range recs {
		task := p.tasks[r.Partition]
		if task == nil {
			task = newMemRuntime()
			p.tasks[r.Partition] = task
		}
		in := &topology.Input{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value}
		before := len(task.out)
		err := task.process(p.top, in)
		if err != nil {
			require.True(t, topology.IsBadRecord(err), "runtime error: %v", err)
			p.dlq = append(p.dlq, deadLetter(p.dlqTo, r, err))
			continue
		}
		p.out = append(p.out, task.out[before:]...)
	}
}

// state returns the committed state of store across tasks.
func (p *memPipeline) state(store string) map[string][]byte {
	out := make(map[string][]byte)
	for _, task := range p.tasks {
		maps.Copy(out, task.state[store])
	}
	return out
}

func deadLetter(topic string, r *kgo.Record, err error) *kgo.Record {
	return &kgo.Record{
		Topic: topic, Key: r.Key, Value: r.Value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderError, Value: []byte(err.Error())},
			{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
			{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		},
	}
}
