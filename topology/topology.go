package topology

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Topology is a validated, immutable processing graph. It is safe for
// concurrent use by many tasks: all per-record state lives in the Call.
type Topology struct {
	nodes    []*node
	byName   map[string]*node
	byTopic  map[string]*node // source topic -> source node
	stores   []*store
	storeSrc map[string][]string // store -> source topics feeding its users
	globals  map[string]bool     // global stores (read-only in nodes)
	sub      map[*node]int       // node -> its sub-topology (subtopology.go)
	nsub     int
}

// SourceInfo describes a source.
type SourceInfo struct {
	Name  string
	Topic string
}

// Sources returns the sources in declaration order.
func (t *Topology) Sources() []SourceInfo {
	var out []SourceInfo
	for _, n := range t.nodes {
		if n.kind == kindSource {
			out = append(out, SourceInfo{n.name, n.topic})
		}
	}
	return out
}

// SourceTopics returns the topics the sources read, in declaration order.
func (t *Topology) SourceTopics() []string {
	var out []string
	for _, s := range t.Sources() {
		out = append(out, s.Topic)
	}
	return out
}

// SinkTopics returns the distinct topics sinks write, in declaration order.
func (t *Topology) SinkTopics() []string {
	var out []string
	for _, n := range t.nodes {
		if n.kind == kindSink && !n.repartition && !slices.Contains(out, n.topic) {
			out = append(out, n.topic)
		}
	}
	return out
}

// StoreNames returns the declared stores in declaration order.
func (t *Topology) StoreNames() []string {
	var out []string
	for _, s := range t.stores {
		if s.global == "" {
			out = append(out, s.name)
		}
	}
	return out
}

// IsGlobalStore reports whether store was declared with GlobalStore.
func (t *Topology) IsGlobalStore(store string) bool { return t.globals[store] }

// GlobalStores returns the global stores (GlobalStore), each with the
// topic it replicates. StoreNames does not list them: they have no
// changelog and no task partition.
func (t *Topology) GlobalStores() map[string]string {
	out := make(map[string]string)
	for _, s := range t.stores {
		if s.global != "" {
			out[s.name] = s.global
		}
	}
	return out
}

// IsWindowStore reports whether store was declared with WindowStore: its
// keys are window store keys (see WindowStoreRef), not the key serde's
// bytes.
func (t *Topology) IsWindowStore(store string) bool {
	for _, s := range t.stores {
		if s.name == store {
			return s.windowed
		}
	}
	return false
}

// StoreSources returns the source topics whose records reach the store's
// users. These topics must be co-partitioned with the store's changelog.
func (t *Topology) StoreSources(store string) []string {
	return slices.Clone(t.storeSrc[store])
}

// Dispatch runs one raw input record through the graph. Store access and
// output go through rt. The error, if any, is a *DecodeError or
// *ProcessError (the record is bad: the caller dead-letters it and must drop
// whatever it staged for it), a *RuntimeError (the runtime failed: abort), a
// *UsageError (a node's code used a store or child it did not declare: a
// programming error, stop), or wraps ErrNoSource.
func (t *Topology) Dispatch(ctx context.Context, rt Runtime, in *Input) error {
	src := t.byTopic[in.Topic]
	if src == nil {
		return fmt.Errorf("%w %q", ErrNoSource, in.Topic)
	}
	key, val, part, err := src.decode(in.Key, in.Value)
	if err != nil {
		return &DecodeError{Node: src.name, Topic: in.Topic, Part: part, Err: err}
	}
	ts := in.Timestamp
	if src.tsFn != nil {
		ts = src.tsFn(key, val, ts)
	}
	stream := in.StreamTime
	if ts.After(stream) {
		stream = ts
	}
	c := &Call{ctx: ctx, rt: rt, t: t, in: in, node: src, ts: ts, stream: stream}
	for _, ch := range src.children {
		if err = c.run(ch, key, val, ts, in.Headers); err != nil {
			break
		}
	}
	if c.rtErr != nil {
		return &RuntimeError{Err: c.rtErr}
	}
	if c.useErr != nil {
		return c.useErr
	}
	if err == nil {
		in.StreamTime = stream
	}
	return err
}

// Describe returns a human-readable description of the graph: nodes in
// declaration order with their edges, stores with the sources feeding them,
// and the sub-topologies (Subtopology) with their nodes.
func (t *Topology) Describe() string {
	var sb strings.Builder
	sb.WriteString("Topology\n")
	for _, n := range t.nodes {
		fmt.Fprintf(&sb, "  %s %q", n.kind, n.name)
		if n.topic != "" {
			fmt.Fprintf(&sb, " topic=%s", n.topic)
		}
		if n.kind == kindPunctuator {
			fmt.Fprintf(&sb, " every %s of %s", n.interval, n.ptype)
		} else {
			fmt.Fprintf(&sb, " [%s, %s]", n.keyType, n.valType)
		}
		if len(n.parents) > 0 {
			fmt.Fprintf(&sb, " <- %s", strings.Join(n.parents, ", "))
		}
		if len(n.children) > 0 {
			names := make([]string, len(n.children))
			for i, c := range n.children {
				names[i] = c.name
			}
			fmt.Fprintf(&sb, " -> %s", strings.Join(names, ", "))
		}
		if len(n.stores) > 0 {
			fmt.Fprintf(&sb, " stores=%s", strings.Join(n.stores, ", "))
		}
		sb.WriteString("\n")
	}
	for _, s := range t.stores {
		kind := "store"
		switch {
		case s.windowed:
			kind = "window store"
		case s.global != "":
			fmt.Fprintf(&sb, "  global store %q [%s, %s] topic=%s\n", s.name, s.keyType, s.valType, s.global)
			continue
		}
		fmt.Fprintf(&sb, "  %s %q [%s, %s] sources=%s\n", kind, s.name, s.keyType, s.valType, strings.Join(t.storeSrc[s.name], ", "))
	}
	// The sub-topologies: each keeps its own stream time in a task.
	members := make([][]string, t.nsub)
	for _, n := range t.nodes {
		members[t.sub[n]] = append(members[t.sub[n]], n.name)
	}
	for i, names := range members {
		fmt.Fprintf(&sb, "  sub-topology %d: %s\n", i, strings.Join(names, ", "))
	}
	return sb.String()
}

// Build validates the graph and returns the Topology. Errors are
// *BuildError values naming the node or store at fault; all of them are
// reported, joined.
func (b *Builder) Build() (*Topology, error) {
	t := &Topology{
		nodes:    cloneNodes(b.nodes),
		byName:   make(map[string]*node),
		byTopic:  make(map[string]*node),
		stores:   b.stores,
		storeSrc: make(map[string][]string),
	}
	v := &validator{t: t}
	v.names()
	v.stores()
	v.edges()
	if len(v.errs) == 0 {
		v.cycles()
	}
	if len(v.errs) == 0 {
		v.storeSources()
	}
	if len(t.byTopic) == 0 && len(v.errs) == 0 {
		v.fail("", "topology has no source")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	t.globals = v.global
	v.subtopologies()
	return t, nil
}

// cloneNodes copies the builder's nodes so that a Topology never changes
// after Build, whatever is later added to the Builder.
func cloneNodes(ns []*node) []*node {
	out := make([]*node, len(ns))
	for i, n := range ns {
		c := *n
		c.parents = slices.Clone(n.parents)
		c.stores = slices.Clone(n.stores)
		c.children = nil
		out[i] = &c
	}
	return out
}

type validator struct {
	t      *Topology
	errs   []error
	global map[string]bool // global stores
}

func (v *validator) fail(name, format string, args ...any) {
	v.errs = append(v.errs, &BuildError{Node: name, Reason: fmt.Sprintf(format, args...)})
}

func (v *validator) err() error {
	switch len(v.errs) {
	case 0:
		return nil
	case 1:
		return v.errs[0]
	}
	return errors.Join(v.errs...)
}

func (v *validator) names() {
	for _, n := range v.t.nodes {
		switch {
		case n.name == "":
			v.fail(n.name, "%s has an empty name", n.kind)
		case v.t.byName[n.name] != nil:
			v.fail(n.name, "duplicate node name")
		default:
			v.t.byName[n.name] = n
		}
		if (n.kind == kindSource || n.kind == kindSink) && n.topic == "" {
			v.fail(n.name, "%s has no topic", n.kind)
		}
		if n.kind == kindSource {
			if other := v.t.byTopic[n.topic]; other != nil {
				v.fail(n.name, "topic %s is already read by source %q", n.topic, other.name)
			} else if n.topic != "" {
				v.t.byTopic[n.topic] = n
			}
		}
	}
}

func (v *validator) stores() {
	seen := make(map[string]bool)
	bad := make(map[string]bool) // already reported
	for _, s := range v.t.stores {
		switch {
		case s.name == "":
			v.fail(s.name, "store has an empty name")
			bad[s.name] = true
		case seen[s.name]:
			v.fail(s.name, "duplicate store name")
			bad[s.name] = true
		}
		seen[s.name] = true
		if s.global != "" {
			if v.global == nil {
				v.global = make(map[string]bool)
			}
			v.global[s.name] = true
			if src := v.t.byTopic[s.global]; src != nil {
				v.fail(s.name, "global store replicates topic %q, which source %q reads: a topic is either an input or a global table", s.global, src.name)
			}
		}
	}
	used := make(map[string]bool)
	for _, n := range v.t.nodes {
		if n.kind != kindProcessor && n.kind != kindPunctuator && len(n.stores) > 0 {
			v.fail(n.name, "%s cannot use stores (only processors and punctuators can)", n.kind)
		}
		if n.kind == kindPunctuator {
			switch {
			case n.interval <= 0:
				v.fail(n.name, "punctuator interval must be positive, got %s", n.interval)
			case n.punct == nil:
				v.fail(n.name, "punctuator has no function")
			case n.ptype != StreamTime && n.ptype != WallClock:
				v.fail(n.name, "unknown punctuation type %s", n.ptype)
			}
		}
		for _, s := range n.stores {
			used[s] = true
			if !seen[s] {
				v.fail(n.name, "uses unknown store %q", s)
			}
		}
	}
	for _, s := range v.t.stores {
		if !used[s.name] && !bad[s.name] {
			v.fail(s.name, "store is used by no node (list it in a processor's Stores)")
			bad[s.name] = true
		}
	}
}

// edges resolves parents into children and checks types along each edge
// that starts at a source (processor-to-processor edges are typed by Send).
func (v *validator) edges() {
	for _, n := range v.t.nodes {
		if n.kind == kindSource || n.kind == kindPunctuator {
			if n.kind == kindPunctuator && len(n.parents) > 0 {
				v.fail(n.name, "punctuator cannot have parents")
			}
			continue
		}
		if len(n.parents) == 0 {
			v.fail(n.name, "%s has no parent", n.kind)
		}
		for _, pn := range n.parents {
			p := v.t.byName[pn]
			switch {
			case p == nil:
				v.fail(n.name, "unknown parent %q", pn)
			case p.kind == kindSink:
				v.fail(n.name, "parent %q is a sink", pn)
			case p.kind == kindSource && (p.keyType != n.keyType || p.valType != n.valType):
				v.fail(n.name, "takes [%s, %s] but source %q gives [%s, %s]", n.keyType, n.valType, pn, p.keyType, p.valType)
			default:
				if !slices.Contains(p.children, n) {
					p.children = append(p.children, n)
				}
			}
		}
	}
}

// cycles reports a cycle among processors by depth-first search.
func (v *validator) cycles() {
	const (
		white = iota
		grey
		black
	)
	color := make(map[*node]int)
	var visit func(n *node, path []string) bool
	visit = func(n *node, path []string) bool {
		color[n] = grey
		path = append(path, n.name)
		for _, c := range n.children {
			switch color[c] {
			case grey:
				v.fail(c.name, "cycle: %s -> %s", strings.Join(path[slices.Index(path, c.name):], " -> "), c.name)
				return true
			case white:
				if visit(c, path) {
					return true
				}
			}
		}
		color[n] = black
		return false
	}
	for _, n := range v.t.nodes {
		if color[n] == white && visit(n, nil) {
			return
		}
	}
}

// storeSources computes, per node, the source topics that reach it, and
// per store the union over its users: a task owns partition p of the store
// and of every one of those topics, so they must be co-partitioned (the
// processor checks their partition counts at start). A store written by
// one input and read by another (a table and the stream joined with it) is
// how a join keeps its state.
func (v *validator) storeSources() {
	reach := make(map[*node][]string)
	var walk func(n *node, topic string)
	walk = func(n *node, topic string) {
		if slices.Contains(reach[n], topic) {
			return
		}
		reach[n] = append(reach[n], topic)
		for _, c := range n.children {
			walk(c, topic)
		}
	}
	for _, n := range v.t.nodes {
		if n.kind == kindSource {
			walk(n, n.topic)
		}
	}
	for _, n := range v.t.nodes {
		if n.kind == kindPunctuator {
			continue // it runs per task, fed by no source: any store of the task suits it
		}
		for _, s := range n.stores {
			if v.global[s] {
				continue // replicated whole on every instance: no task partition
			}
			for _, topic := range reach[n] {
				if !slices.Contains(v.t.storeSrc[s], topic) {
					v.t.storeSrc[s] = append(v.t.storeSrc[s], topic)
				}
			}
		}
	}
	for _, srcs := range v.t.storeSrc {
		sort.Strings(srcs)
	}
}
