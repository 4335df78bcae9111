package dsl

import (
	"errors"
	"fmt"
	"slices"

	"github.com/exactly-stream/exactly/topology"
)

// Builder adds typed streams and tables to a topology.Builder. The
// low-level Builder stays usable: nodes added there and DSL operators
// live in one graph (see Process and FromNode). A Builder is not safe for
// concurrent use.
type Builder struct {
	b            *topology.Builder
	used         map[string]bool // operator names taken, explicit or derived
	errs         []error
	requireNames bool
	built        bool // Build was called: the operators' lists are frozen
}

// BuilderOpt configures a Builder made by New.
type BuilderOpt interface{ apply(*Builder) }

type builderOpt func(*Builder)

func (o builderOpt) apply(d *Builder) { o(d) }

// RequireNames makes Build fail for every stateful operator (Count,
// Reduce, Aggregate, Materialize; TableFrom takes a name) that has no Named
// option: a derived name follows the operator's place in the code, so
// inserting an operator upstream renames the store and its changelog and
// silently orphans the old state (the lesson of Kafka Streams' KIP-1111,
// ensure.explicit.internal.resource.naming). The default is off.
func RequireNames() BuilderOpt { return builderOpt(func(d *Builder) { d.requireNames = true }) }

// New returns a Builder adding to b (a new topology.Builder if b is nil).
func New(b *topology.Builder, opts ...BuilderOpt) *Builder {
	if b == nil {
		b = topology.NewBuilder()
	}
	d := &Builder{b: b, used: make(map[string]bool)}
	for _, o := range opts {
		o.apply(d)
	}
	return d
}

// Topology returns the low-level Builder, to add nodes, stores and sinks
// by hand.
func (d *Builder) Topology() *topology.Builder { return d.b }

// Build checks the DSL's own rules (names, repartitions) and builds the
// topology. All errors are reported, joined: *BuildError values of this
// package and *topology.BuildError values of the graph.
//
// Build freezes the DSL part: a built Topology runs the operators
// concurrently, so operators added afterwards are refused (ErrBuilt) and
// not connected.
func (d *Builder) Build() (*topology.Topology, error) {
	d.built = true
	t, err := d.b.Build()
	if err := errors.Join(append(slices.Clone(d.errs), err)...); err != nil {
		return nil, err
	}
	return t, nil
}

// attach appends f to list, unless the Builder was built: a built
// Topology reads these lists from many tasks at once.
func attach[F any](d *Builder, list *[]F, f F) {
	if !d.built {
		*list = append(*list, f)
	}
}

func (d *Builder) fail(op string, err error) {
	d.errs = append(d.errs, &BuildError{Operator: op, Err: err})
}

// Opt configures one operator.
type Opt interface{ apply(*opCfg) }

type opCfg struct {
	name   string
	ks, vs any // RepartitionWith's serdes
}

type opOpt func(*opCfg)

func (o opOpt) apply(c *opCfg) { o(c) }

// Named gives an operator an explicit name. The operator's low-level node
// (if it has one), its store and the store's changelog topic
// (<group>-<name>-changelog) are named after it, and so are the derived
// names of the operators downstream of it. Names are unique across the
// Builder.
func Named(name string) Opt { return opOpt(func(c *opCfg) { c.name = name }) }

// RepartitionWith gives a join the serdes of a re-keyed stream, so that
// the join repartitions it by its new key first (a topic
// "<group>-<join>-repartition", as Repartition makes), as Kafka Streams
// does with Joined.with: without it, joining a re-keyed stream with a
// table fails the build (ErrRekeyed). The serdes must be the stream's key
// and value types; a stream that is not re-keyed ignores them.
func RepartitionWith[K, V any](ks topology.Serde[K], vs topology.Serde[V]) Opt {
	return opOpt(func(c *opCfg) { c.ks, c.vs = ks, vs })
}

// repartitionSerdes returns RepartitionWith's serdes among opts, when they
// are of types K and V.
func repartitionSerdes[K, V any](opts []Opt) (topology.Serde[K], topology.Serde[V], bool) {
	var c opCfg
	for _, o := range opts {
		o.apply(&c)
	}
	ks, ok1 := c.ks.(topology.Serde[K])
	vs, ok2 := c.vs.(topology.Serde[V])
	return ks, vs, ok1 && ok2
}

// opName returns the name of a new operator: the explicit one, or
// "<parent>-<op>" with "-2", "-3"... appended when an earlier operator took
// it (declaration order decides, so the same code gives the same names).
func (d *Builder) opName(parent, op string, opts []Opt, stateful bool) string {
	var c opCfg
	for _, o := range opts {
		o.apply(&c)
	}
	if c.name != "" {
		return d.take(c.name)
	}
	if d.built {
		d.fail(parent+"-"+op, ErrBuilt)
	}
	base := parent + "-" + op
	name := base
	for i := 2; d.used[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	d.used[name] = true
	if stateful && d.requireNames {
		d.fail(name, ErrNameRequired)
	}
	return name
}

// take reserves an explicit name.
func (d *Builder) take(name string) string {
	if d.built {
		d.fail(name, ErrBuilt)
	}
	if d.used[name] {
		d.fail(name, ErrDuplicateName)
	}
	d.used[name] = true
	return name
}
