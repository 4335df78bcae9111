// Package dsl is a typed streams DSL over package topology, in the manner
// of Kafka Streams' StreamsBuilder: streams and tables, stateless
// operators, grouping and aggregations into tables backed by state stores,
// and sinks. A DSL program builds an ordinary topology.Topology, which the
// processor runs exactly once like any other: every store write and every
// output record of a DSL operator is in the transaction of the input record
// that caused it.
//
// How often each word occurred across all the lines (a word count: the
// lines are keyed by document, so the words are re-keyed, and the grouping
// sends them through a repartition topic to the task that owns each word):
//
//	d := dsl.New(nil)
//	lines := dsl.StreamFrom(d, "lines", "lines", topology.String(), topology.String())
//	words := dsl.FlatMapValues(lines, func(_, line string) []string { return wordcount.Words(line) })
//	counts := dsl.GroupBy(words, func(_, w string) string { return w }, topology.String(), topology.String(),
//		dsl.Named("by-word")).Count(dsl.Named("counts"))
//	counts.ToStream().To("word-counts", topology.String(), topology.Int64())
//	t, err := d.Build()
//
// # Re-keying and repartition topics
//
// A task owns one partition of the inputs and of its stores, and a record
// is in the partition of the key it was written with. After a key change
// (Map, SelectKey, FlatMap, or a Merge with such a stream) a stateful
// operator would see only the records of the new key that happen to be in
// its partition; so a grouping of a re-keyed stream (GroupByKey after the
// change, or GroupBy) writes the records to a repartition topic,
// <group>-<grouping>-repartition, and reads them back: the processor
// creates it with the input's partition count, consumes it in the same
// transactions as everything else, and purges what it consumed
// (topology.Repartition). Repartition (or Through) does the same
// explicitly. Name the groupings that re-key (Named): the topic is named
// after the grouping, and a topic renamed by an unrelated change would
// orphan the records in flight in the old one.
//
// The reference order application (examples/orders) has this shape (see
// Example_orders): a hand-written node validates each order (an error
// dead-letters it) and drops re-sent ones with a store keyed by order id,
// which a DSL stream feeds with Process and which feeds the DSL back
// through FromNode; the DSL folds the orders into per-customer totals:
//
//	fresh, send := dsl.FromNode[string, orders.Order](d, "dedup")
//	in := dsl.StreamFrom(d, "orders", "orders", topology.String(), orders.OrderSerde())
//	dsl.Process(in, "dedup", validateAndDedup(send), topology.Stores("order-ids"))
//	customers := dsl.Aggregate(fresh.GroupByKey(topology.String(), orders.OrderSerde()), newCustomer, addOrder,
//		orders.CustomerSerde(), dsl.Named("customers"))
//	customers.ToStream().To("customer-totals", topology.String(), topology.JSON[orders.Customer]())
//
// # Streams, tables and types
//
// A Stream[K, V] is a sequence of records; a Table[K, V] the latest value
// per key, with deletions. Operators that keep the types are methods
// (Filter, FilterNot, Peek, Branch, Merge, To, GroupByKey, Count, Reduce,
// ToStream); those that change them are generic functions (Map, MapValues,
// SelectKey, FlatMap, FlatMapValues, Aggregate, MapTableValues, the
// joins), since Go methods cannot take type parameters. Serdes are given
// where bytes are made: at sources (StreamFrom, TableFrom), sinks (To) and
// stores (GroupByKey's key serde, Reduce's and Aggregate's value serde,
// a stream-stream join's key and value serdes).
//
// Stateless operators are fused: they run as typed function calls inside
// the low-level node that produced the record (the first operator after a
// source gets a node of its own), so a chain of them costs no allocation
// per record beyond what the operators themselves allocate. Stateful
// operators are low-level nodes with a store.
//
// # Tombstones
//
// As in Kafka Streams: TableFrom puts a record's value and deletes its key
// on a tombstone (a null Kafka value); a table's ToStream forwards a
// deletion as the zero value, which a topology.JSON serde of a pointer,
// map, slice or interface type produces as a tombstone; Count, Reduce and
// Aggregate skip records whose value is nil, and an aggregate that is nil
// deletes its key. "Nil" is Go's nil for pointers, maps, slices, channels,
// functions and interfaces; values of other types are never nil.
//
// # Names
//
// Every operator has a name, and names are unique in a Builder. A name is
// explicit (the Named option) or derived: "<parent>-<operator>", where
// parent is the name of the operator (or source) it is applied to and
// operator is filter, filter-not, map, map-values, select-key, flat-map,
// flat-map-values, peek, branch (its streams "<branch>-0", "-1"...), merge,
// to, group, count, reduce, aggregate, to-stream, materialize, stream
// (FromNode), join, left-join, outer-join, fk-join, fk-left-join. A
// second operator of a kind on one parent gets "-2", the next "-3", in
// declaration order. So the same code always gives the same names.
//
// What is derived from names: the low-level node of a materialized
// operator (sources, the first operator after a source, stateful
// operators, sinks) has the operator's name; the store of an aggregation
// or of Materialize has the operator's name, and so its changelog topic is
// <group>-<name>-changelog (processor.ChangelogTopic); TableFrom's store is
// the table's name and its source node "<name>-source". A derived name
// depends on the operators upstream: inserting a Filter before a Count
// renames the count's store and changelog, and the old state is silently
// left behind (the lesson of Kafka Streams' KIP-1111). Give every stateful
// operator a Named name; RequireNames makes Build enforce it.
//
// # Windows
//
// WindowedBy windows a grouped stream with Tumbling or Hopping windows
// (aligned to the epoch) or Sliding windows (Kafka Streams'
// SlidingWindows: the windows that start or end on a record, bounds
// inclusive); Count, Reduce and WindowedAggregate then fold
// each key's records per window into a table keyed by topology.Windowed
// (write it with topology.WindowedSerde). The operator is named
// "<grouping>-windowed-count" (-reduce, -aggregate) unless WindowNamed or
// Named, and its window store has that name. Grace accepts out-of-order
// records until stream time passes a window's end plus grace; after that
// the window is closed and a record only for closed windows is late
// (ErrLate, dead-lettered, or dropped with Late(LateDrop)). EmitFinal
// emits each window once when it closes, timestamped end - 1 ms, in the
// transaction that closes it; CloseOnWallClock also closes windows on the
// wall clock, for partitions that went quiet. Without EmitFinal every
// update is emitted, timestamped as its record.
//
// # Joins
//
// Join and LeftJoin join a stream with a table (Kafka Streams'
// KStream-KTable join): each stream record is joined with the table's
// value for its key, read from the table's store when the record is
// processed; the output keeps the record's key, timestamp and headers.
// Join emits nothing for a key the table does not hold; LeftJoin calls its
// joiner with found false (and the zero table value). Only stream records
// trigger output: a table update changes what later records see and
// emits nothing. As in Kafka Streams, a record with a nil value joins
// nothing, and one with a nil key is joined only by LeftJoin (with no
// lookup). The runtime processes a task's inputs in timestamp
// order, so on a cold start, with a backlog on both topics, a record
// sees the table as of its own timestamp, not as of the end of the
// backlog.
//
// TableJoin, TableLeftJoin and TableOuterJoin join two tables (KTable-KTable,
// not windowed) into a table with a result for a key when both sides hold
// it (inner), when the first does (left), or when either does (outer). A
// change on either side reads the other side's store and emits the key's
// new result, or a deletion when the key has no result any more (or its
// joiner returns nil), timestamped as the change; the result table is not
// materialized (Materialize it to read or join it).
// The join remembers no results, so a tombstone of a key its side did
// not hold may give a deletion of a key that had no result (a no-op for
// a consumer that keeps a table); Kafka Streams emits none there.
//
// StreamJoin, StreamLeftJoin and StreamOuterJoin join two streams within
// JoinWindows (Kafka Streams' KStream-KStream join): a record of the
// first stream at t1 joins each record of the second with its key and a
// timestamp t2 in [t1 - before, t1 + after] (JoinTimeDifference(d): |t1 -
// t2| <= d). Each side's records are buffered in a window store of its
// own ("<name>-this-store", "<name>-other-store", encoded with the serdes
// given to the join: key, then each side's value), so a pair is emitted
// when its second record arrives, with the later timestamp, the key, and
// the headers of the second record. The left and outer joins emit a
// record that joined nothing, with the other side absent (found false),
// only once stream time passes its window end (t1 + after; t2 + before
// for the second stream) plus the windows' grace, and not at all if a
// partner came first: no spurious results for in-order input, as in Kafka
// Streams since 3.1 (one out-of-order case gives an unjoined record and
// then a pair with it: see StreamLeftJoin). A record whose window end plus
// grace is before stream time is late: dropped, counted as the event
// EventLateDropped of the node of its side ("<name>-this",
// "<name>-other"); unlike the windowed aggregations there is no
// dead-letter policy. Buffered records are deleted once stream time
// passes their timestamp plus before, after and grace. Stream time is the
// task's, over all its inputs; unjoined records are emitted while the
// join processes a record, so a partition that goes quiet holds its last
// ones (there is no wall-clock close). Records with a nil key or value
// join nothing (a nil-key record of an outer side is emitted as unjoined
// at once); a stream joined with itself gives each pair in both orders
// and each record with itself, as in Kafka Streams. The
// operators are named "<first>-join", "-left-join" and "-outer-join"
// unless Named; they own state, so name them (RequireNames).
//
// A joined table must be materialized: TableFrom and the aggregations
// are, a table derived with Filter or MapTableValues needs Materialize,
// or Build fails with ErrNotMaterialized naming the table. The join node
// reads the table's store while being fed by the stream's topic (or the
// other table's), so the task that owns partition p owns partition p of
// both topics: they must be co-partitioned, with the same partition
// count (the processor checks at start) and keyed alike with the default
// partitioner, so that a key is in the same partition of both. A stream
// re-keyed by Map, SelectKey or FlatMap is not in its new key's partition:
// joining it with a table repartitions it by its new key first when the
// join is given its serdes (RepartitionWith(ks, vs), Kafka Streams'
// Joined.with), and fails the build with ErrRekeyed otherwise ("stream X
// was re-keyed; call Repartition(ks, vs) before joining it with table
// Y"). A stream-stream join's nodes read both sides' buffers while fed by
// both topics, so the same holds for its two streams: they must be
// co-partitioned, and a re-keyed one is repartitioned with the join's own
// serdes, as Kafka Streams does. The stream-table and table-table join operators are named
// "<stream>-join", "<stream>-left-join", "<table>-join",
// "<table>-left-join" and "<table>-outer-join" unless Named; they own no
// state.
//
// GlobalTableFrom replicates a whole topic (normally compacted) into a
// read-only global store on every instance (Kafka Streams'
// GlobalKTable); JoinGlobal and LeftJoinGlobal join a stream with it,
// looking up the key a selector computes from each record (key,
// value), so the stream need not be co-partitioned with the topic and
// may be re-keyed (the output keeps the record's key, timestamp and
// headers, and stays re-keyed if the stream was). The inner join emits
// nothing for an absent (or nil) looked-up key, the left join calls its
// joiner with found false; a record with a nil value joins nothing; only
// stream records trigger output. The processor reads the topic to its end
// (bootstrap) before it processes any record, then follows it in the
// background: a lookup sees the topic as far as the instance has read it,
// not as of the stream record's timestamp (no time synchronization, as in
// Kafka Streams), so on a cold start with a backlog every record sees the
// bootstrapped table, and later updates race with the stream. A record
// with a null value deletes its key. Every instance holds the whole topic,
// in memory and on disk, whatever its share of the tasks: keep global
// tables to small reference data. The operators are named
// "<stream>-global-join" and "<stream>-global-left-join" unless Named;
// they own no state. topologytest writes a record piped into a global
// table's topic into its store at once.
//
// ForeignKeyJoin and ForeignKeyLeftJoin join two tables on a foreign key
// (Kafka Streams' KTable-KTable foreign-key join, KIP-213): a key k of the
// left table joins the right table's entry at fk(k, v), a key of the
// right. The two tables need not be co-partitioned: the join adds two
// internal topics, made like repartition topics (the processor creates
// them with the inputs' partition count, so every input and internal
// topic must have that count, which it checks at start), and a store.
// A left change is sent, keyed by its foreign key, to
// <group>-<join>-subscription-repartition, with the left key and a hash
// of the left value as stored (the first 128 bits of its SHA-256); when
// the foreign key changed, an unsubscribe goes to the old one. The task
// that holds the foreign key's partition of the right table keeps the
// subscriptions in the store "<join>-subscriptions" (changelogged like
// every store), keyed by the foreign key (length-prefixed) then the left
// key, so that a right change finds its subscribers by a range over one
// prefix. A subscription is answered at once, and a right change answers
// every subscriber of its key, through
// <group>-<join>-response-repartition, keyed by the left key: the right
// value (or its absence) and the hash the subscriber sent. The task of
// the left key reads its left value: if its hash is not the response's,
// the left key changed (or was deleted) since it subscribed, and the
// response is dropped (counted as EventStaleDropped): a newer response,
// or a result already emitted, supersedes it. Otherwise it emits the
// result, or a deletion (inner join, right side absent). A left key that
// is deleted or gets a nil foreign key has its result at once, without a
// round trip: a deletion, or the left join's result with found false; a
// response in flight for it is then stale. So the results are eventually
// consistent per key, as Kafka Streams' are: a change's results follow it
// by a round trip through the topics, and a result may briefly reflect an
// older right value, never an older left one. As with TableJoin, the
// inner join may emit a deletion of a key that had no result. The
// operators are named "<left>-fk-join" and "<left>-fk-left-join" unless
// Named; they own a store and two topics (named after the join), so name
// them (RequireNames). Both tables must be materialized.
//
// # Mixing with the low-level API
//
// New takes the topology.Builder it adds to; Builder.Topology returns it.
// Process feeds a DSL stream to a hand-written node (which may declare its
// own stores), FromNode turns a low-level node's output (or a source) back
// into a DSL stream, and Table.Store returns a table's store for reading
// it in a node or from outside (processor.Get, the HTTP state API).
package dsl
