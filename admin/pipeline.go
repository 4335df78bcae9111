package admin

import (
	"maps"
	"slices"

	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// Stage is one application of a pipeline: a consumer group reading its
// input topics and writing outputs (sinks and its dead-letter topic) and
// store changelogs. A task owns partition p of every input and of every
// changelog, so the inputs must be co-partitioned (the same partition
// count) and the changelogs must have that count; the runtime creates
// outputs with that count too. StageOf describes the stage of a topology.
type Stage struct {
	// Group is the consumer group, which is also the application id that
	// names the changelogs.
	Group string
	// Inputs are the source topics, in the topology's declaration order.
	// The first is the one whose partition count the others, the outputs
	// and the changelogs must have.
	Inputs []string
	// Outputs are the sink and dead-letter topics.
	Outputs []string
	// Changelogs are the compacted store changelog topics.
	Changelogs []string
	// Repartitions are the stage's repartition topics (topology.Repartition,
	// named <group>-<name>-repartition): it writes them and reads them
	// back, and purges what it consumed (DeleteRecords). Each is listed in
	// Inputs, after the external ones, and in Outputs as well.
	Repartitions []string
	// Globals are the topics the stage's global stores replicate
	// (topology.GlobalStore): read whole by every instance, outside the
	// group, so neither co-partitioned with the inputs nor listed in them.
	Globals []string
}

// Pipeline is the stages of an application, in data-flow order: an
// output of a stage may be the input of a later one. Every check of the
// package takes the pipeline it checks.
type Pipeline struct {
	Stages []Stage // in data-flow order
}

// StageOf describes the application that runs topology t in consumer
// group group with dead-letter topic deadLetter (empty: none): its inputs
// are t's source topics, its outputs t's sink topics and the dead-letter
// topic, its changelogs those of t's stores, named as the processor names
// them (processor.ChangelogTopic). It is how a topology's own shape drives
// provisioning and the doctor: a pipeline of one topology is
//
//	admin.Pipeline{Stages: []admin.Stage{admin.StageOf(t, group, dlq)}}
func StageOf(t *topology.Topology, group, deadLetter string) Stage {
	if named, err := t.ForApplication(group); err == nil {
		t = named // repartition topics under the names the processor gives them
	}
	s := Stage{Group: group, Outputs: t.SinkTopics()}
	for _, src := range t.SourceTopics() {
		if !t.IsRepartition(src) && !slices.Contains(s.Inputs, src) {
			s.Inputs = append(s.Inputs, src)
		}
	}
	for _, r := range t.Repartitions() {
		if !slices.Contains(s.Repartitions, r.Topic) {
			s.Repartitions = append(s.Repartitions, r.Topic)
			s.Inputs = append(s.Inputs, r.Topic)
			s.Outputs = append(s.Outputs, r.Topic)
		}
	}
	if deadLetter != "" && !slices.Contains(s.Outputs, deadLetter) {
		s.Outputs = append(s.Outputs, deadLetter)
	}
	s.Changelogs = changelogs(group, t.StoreNames()...)
	for _, store := range slices.Sorted(maps.Keys(t.GlobalStores())) {
		if topic := t.GlobalStores()[store]; !slices.Contains(s.Globals, topic) {
			s.Globals = append(s.Globals, topic)
		}
	}
	return s
}

// changelogs returns the changelog topics of group's stores.
func changelogs(group string, stores ...string) []string {
	out := make([]string, 0, len(stores))
	for _, s := range stores {
		out = append(out, processor.ChangelogTopic(group, s))
	}
	return out
}

// Topics returns every topic of the pipeline once, in data-flow order.
func (p Pipeline) Topics() []string {
	var out []string
	add := func(ts ...string) {
		for _, t := range ts {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	for _, s := range p.Stages {
		add(s.Inputs...)
		add(s.Globals...)
		add(s.Outputs...)
		add(s.Changelogs...)
	}
	return out
}

// Groups returns the consumer groups of the pipeline.
func (p Pipeline) Groups() []string {
	out := make([]string, 0, len(p.Stages))
	for _, s := range p.Stages {
		out = append(out, s.Group)
	}
	return out
}

// IsChangelog reports whether topic is a store changelog of the pipeline.
func (p Pipeline) IsChangelog(topic string) bool {
	for _, s := range p.Stages {
		if slices.Contains(s.Changelogs, topic) {
			return true
		}
	}
	return false
}

// isRepartition reports whether topic is a repartition topic of a stage.
func (p Pipeline) isRepartition(topic string) bool {
	for _, s := range p.Stages {
		if slices.Contains(s.Repartitions, topic) {
			return true
		}
	}
	return false
}

// Inputs returns every input topic of the pipeline once, in data-flow
// order, those other stages write included.
func (p Pipeline) Inputs() []string {
	var out []string
	for _, s := range p.Stages {
		for _, t := range s.Inputs {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// external reports whether topic is an input that no stage writes.
func (p Pipeline) external(topic string) bool {
	for _, s := range p.Stages {
		if slices.Contains(s.Outputs, topic) || slices.Contains(s.Changelogs, topic) {
			return false
		}
	}
	return true
}

// role names what topic is in the pipeline: input, output, changelog,
// repartition.
func (p Pipeline) role(topic string) string {
	switch {
	case p.IsChangelog(topic):
		return "changelog"
	case p.isRepartition(topic):
		return "repartition"
	case p.external(topic):
		return "input"
	}
	return "output"
}

// inputOf returns the input whose partition count topic must have: for an
// output or changelog, its stage's first input; for another input of a
// stage, the stage's first input (inputs are co-partitioned); for the first
// input no stage writes, topic itself (an external input, whose count the
// operator chooses).
func (p Pipeline) inputOf(topic string) string {
	for _, s := range p.Stages {
		if len(s.Inputs) > 0 && (slices.Contains(s.Outputs, topic) || slices.Contains(s.Changelogs, topic)) {
			return s.Inputs[0]
		}
	}
	for _, s := range p.Stages {
		if i := slices.Index(s.Inputs, topic); i > 0 {
			return s.Inputs[0]
		}
	}
	return topic
}
