package topology

// Sub-topologies: the parts of a topology that records can reach one
// another through without a topic in between. A repartition (a sink to an
// internal topic read back by a source of the same topology) cuts the graph
// in two: the re-keyed records reach the second part only through the
// topic, after the first part committed them. Nodes joined by an edge or
// by a store they share are in one sub-topology; global stores, read-only
// and replicated whole, join nothing.
//
// Stream time is kept per task and sub-topology, as Kafka Streams keeps it
// per task of a sub-topology: the first part's records (a till's sales)
// must not move the second part's stream time (the per-product minutes)
// ahead of the re-keyed records still on their way through the topic, or
// they would come late.

// Subtopologies returns how many sub-topologies the topology has.
func (t *Topology) Subtopologies() int { return t.nsub }

// Subtopology returns the sub-topology of the source that reads topic, or
// -1 when no source reads it.
func (t *Topology) Subtopology(topic string) int {
	src := t.byTopic[topic]
	if src == nil {
		return -1
	}
	return t.sub[src]
}

// StoreSubtopology returns the sub-topology of the nodes that use store,
// or -1 for a global store or a store no node uses.
func (t *Topology) StoreSubtopology(store string) int {
	if t.globals[store] {
		return -1
	}
	for _, n := range t.nodes {
		for _, s := range n.stores {
			if s == store {
				return t.sub[n]
			}
		}
	}
	return -1
}

// subtopologies numbers the sub-topologies, in the order their first node
// was declared, and records each node's (validator, after edges).
func (v *validator) subtopologies() {
	parent := make(map[*node]*node)
	var find func(n *node) *node
	find = func(n *node) *node {
		p, ok := parent[n]
		if !ok || p == n {
			return n
		}
		r := find(p)
		parent[n] = r
		return r
	}
	union := func(a, b *node) {
		if ra, rb := find(a), find(b); ra != rb {
			parent[rb] = ra
		}
	}
	users := make(map[string]*node) // store -> its first user
	for _, n := range v.t.nodes {
		for _, c := range n.children {
			union(n, c)
		}
		for _, s := range n.stores {
			if v.global[s] {
				continue
			}
			if u, ok := users[s]; ok {
				union(u, n)
			} else {
				users[s] = n
			}
		}
	}
	ids := make(map[*node]int)
	v.t.sub = make(map[*node]int, len(v.t.nodes))
	for _, n := range v.t.nodes {
		r := find(n)
		id, ok := ids[r]
		if !ok {
			id = len(ids)
			ids[r] = id
		}
		v.t.sub[n] = id
	}
	v.t.nsub = len(ids)
}

// punctSub returns the sub-topology a punctuator follows, or -1 when its
// sub-topology has no source.
func (t *Topology) punctSub(n *node) int {
	id := t.sub[n]
	for _, src := range t.byTopic {
		if t.sub[src] == id {
			return id
		}
	}
	return -1
}
