package processor

import "github.com/twmb/franz-go/pkg/kgo"

// partitioner sends changelog records to the partition set on the record
// (the task's partition) and everything else by key, like the Java client's
// default partitioner (murmur2), so keyed outputs land where Java producers
// would put them.
type partitioner struct {
	manual  map[string]bool
	manualP kgo.Partitioner
	byKey   kgo.Partitioner
}

func newPartitioner(manualTopics []string) *partitioner {
	p := &partitioner{
		manual:  make(map[string]bool),
		manualP: kgo.ManualPartitioner(),
		byKey:   kgo.StickyKeyPartitioner(nil),
	}
	for _, t := range manualTopics {
		p.manual[t] = true
	}
	return p
}

func (p *partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return p.manualP.ForTopic(topic)
	}
	return p.byKey.ForTopic(topic)
}
