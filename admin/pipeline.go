package admin

import (
	"slices"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// Stage is one application of a pipeline: a consumer group reading one
// input topic and writing outputs (sinks and its dead-letter topic) and
// store changelogs. A task owns partition p of the input and of every
// changelog, so the changelogs must have the input's partition count; the
// runtime creates outputs with that count too.
type Stage struct {
	Group      string   // consumer group and application id
	Input      string   // source topic
	Outputs    []string // sink and dead-letter topics
	Changelogs []string // compacted store changelog topics
}

// Pipeline is the stages of an application, in data-flow order: an
// output of a stage may be the input of a later one.
type Pipeline struct {
	Stages []Stage
}

// OrderPipeline is the reference application: the order service (group
// orderGroup, stores orders.OrderStores) reading the orders topic, and
// the payment stage (group paymentGroup, store orders.StorePayments)
// reading the order service's events. Topic names carry prefix, as with
// `exactly run --topic-prefix`. An empty group means the default group
// with the prefix, as `exactly run` names it.
func OrderPipeline(prefix, orderGroup, paymentGroup string) Pipeline {
	if orderGroup == "" {
		orderGroup = prefix + orders.DefaultOrderGroup
	}
	if paymentGroup == "" {
		paymentGroup = prefix + orders.DefaultPaymentGroup
	}
	ts := orders.TopicsWithPrefix(prefix)
	return Pipeline{Stages: []Stage{
		{
			Group:      orderGroup,
			Input:      ts.Orders,
			Outputs:    []string{ts.Events, ts.DLQ},
			Changelogs: changelogs(orderGroup, orders.OrderStores()...),
		},
		{
			Group:      paymentGroup,
			Input:      ts.Events,
			Outputs:    []string{ts.Payments, ts.PaymentsDLQ},
			Changelogs: changelogs(paymentGroup, orders.StorePayments),
		},
	}}
}

// StageOf describes the application that runs topology t in consumer
// group group with dead-letter topic deadLetter (empty: none): its input is
// t's source topic, its outputs t's sink topics and the dead-letter topic,
// its changelogs those of t's stores. It is how a topology's own shape
// drives provisioning and the doctor.
func StageOf(t *topology.Topology, group, deadLetter string) Stage {
	s := Stage{Group: group, Outputs: t.SinkTopics()}
	if src := t.SourceTopics(); len(src) > 0 {
		s.Input = src[0]
	}
	if deadLetter != "" && !slices.Contains(s.Outputs, deadLetter) {
		s.Outputs = append(s.Outputs, deadLetter)
	}
	s.Changelogs = changelogs(group, t.StoreNames()...)
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
		add(s.Input)
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

// external reports whether topic is an input that no stage writes.
func (p Pipeline) external(topic string) bool {
	for _, s := range p.Stages {
		if slices.Contains(s.Outputs, topic) || slices.Contains(s.Changelogs, topic) {
			return false
		}
	}
	return true
}

// role names what topic is in the pipeline: input, output, changelog.
func (p Pipeline) role(topic string) string {
	switch {
	case p.IsChangelog(topic):
		return "changelog"
	case p.external(topic):
		return "input"
	}
	return "output"
}

// inputOf returns the input whose partition count topic must have: its
// stage's input, or topic itself for an external input.
func (p Pipeline) inputOf(topic string) string {
	for _, s := range p.Stages {
		if slices.Contains(s.Outputs, topic) || slices.Contains(s.Changelogs, topic) {
			return s.Input
		}
	}
	return topic
}
