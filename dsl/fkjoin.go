package dsl

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/exactly-stream/exactly/topology"
)

// EventStaleDropped is the event a foreign-key join's "<name>-resolve"
// node counts (topology.Call.Count) for each response it drops because
// the left value it answers has changed (or was deleted) since.
const EventStaleDropped = "stale-dropped"

// ForeignKeyJoin joins two tables on a foreign key (Kafka Streams'
// KTable-KTable foreign-key join, KIP-213): the result has an entry for a
// key k of left when fk(k, left's value) is a key of right,
// joiner(k, left's value, right's value at that key). A left entry whose
// foreign key is nil (fk returns a nil pointer, map, slice or interface)
// or absent from right has no result. A change of either side updates the
// results it affects: a left change its own key's, a right change those of
// every left key whose foreign key it is. A result is deleted when it goes
// away, and when joiner returns nil.
//
// Unlike TableJoin, the tables need not be co-partitioned or keyed alike:
// each left change is sent, keyed by its foreign key, through an internal
// subscription topic to the task that holds that key of right, which
// remembers the subscription and answers through an internal response
// topic keyed by the left key (see "Joins" in the package documentation
// for the topics, the store and the hash that drops stale answers). So
// the results are eventually consistent per key, as in Kafka Streams: a
// result follows its causes by a round trip through the topics, and
// between them a key may briefly show the result of an older right value.
// All input and internal topics must have the same partition count (the
// processor creates the internal ones so). fk must be deterministic, and
// the right table's key serde must encode a foreign key as right's topic
// is keyed: the subscription is partitioned by those bytes.
//
// Both tables must be materialized (else Build fails, ErrNotMaterialized).
// The result is not materialized: call Materialize to read or join it.
// A result is timestamped and headed as the change that caused it. The
// operator is named "<left>-fk-join" unless Named; it owns a store and
// two topics, so name it (RequireNames requires it).
func ForeignKeyJoin[K, V, KO, VO, VR any](left *Table[K, V], right *Table[KO, VO], fk func(K, V) KO,
	joiner func(K, V, VO) VR, opts ...Opt) *Table[K, VR] {
	return fkJoin(left, right, fk, "fk-join", false, opts, func(k K, v V, vo VO, _ bool) VR { return joiner(k, v, vo) })
}

// ForeignKeyLeftJoin is ForeignKeyJoin, except that the result has an
// entry for every key of left: joiner gets found false and the zero VO
// when the foreign key is nil or absent from right (found tells an absent
// entry from a zero value). Named "<left>-fk-left-join" unless Named.
func ForeignKeyLeftJoin[K, V, KO, VO, VR any](left *Table[K, V], right *Table[KO, VO], fk func(K, V) KO,
	joiner func(k K, v V, vo VO, found bool) VR, opts ...Opt) *Table[K, VR] {
	return fkJoin(left, right, fk, "fk-left-join", true, opts, joiner)
}

// fkJoin adds the four nodes, two internal topics and the store of a
// foreign-key join:
//
//	left changes -> "<name>-left" -> subscription topic (key: fk)
//	  -> "<name>-subscribe" (store "<name>-subscriptions", reads right's store)
//	right changes -> "<name>-right" (ranges over the subscriptions of its key)
//	both -> response topic (key: the left key) -> "<name>-resolve" (reads left's store)
//
// "<name>-left" also emits a result itself when the left key has no
// foreign key any more (deleted, or a nil foreign key).
func fkJoin[K, V, KO, VO, VR any](left *Table[K, V], right *Table[KO, VO], fk func(K, V) KO, op string, leftJoin bool,
	opts []Opt, joiner func(K, V, VO, bool) VR) *Table[K, VR] {
	d := left.d
	name := d.opName(left.name, op, opts, true)
	j := &fkJoinNodes[K, V, KO, VO, VR]{
		fk: fk, joiner: joiner, leftJoin: leftJoin, fkNil: nilFunc[KO](), resNil: nilFunc[VR](),
		out: &Table[K, VR]{d: d, name: name},
	}
	names := []string{name + "-left", name + "-subscription", name + "-subscribe", name + "-subscriptions",
		name + "-right", name + "-response", name + "-resolve"}
	for _, n := range names {
		d.take(n)
	}
	if left.store == nil || right.store == nil {
		if left.store == nil {
			d.fail(name, notMaterialized(left.name))
		}
		if right.store == nil {
			d.fail(name, notMaterialized(right.name))
		}
		j.out.procs = left.procs // the build fails: give downstream operators a parent
		return j.out
	}
	leftNode, subName, subNode, storeName, rightNode, respName, resolveNode :=
		names[0], names[1], names[2], names[3], names[4], names[5], names[6]
	j.left, j.right = *left.store, *right.store
	j.subs = topology.Store(d.b, storeName, topology.Bytes(), topology.Bytes())
	j.subTopic = topology.Repartition(d.b, subName, topology.Bytes(), topology.Serde[subscription](subscriptionSerde{}),
		topology.Parents(leftNode))
	j.respTopic = topology.Repartition(d.b, respName, topology.Bytes(), topology.Serde[response](responseSerde{}),
		topology.Parents(subNode, rightNode))
	j.out.procs = []string{leftNode, resolveNode}

	lref := topology.Node(d.b, leftNode, j.leftChange, topology.Parents(left.procs...), topology.Stores(j.left.Name()))
	attach(d, &left.nextOld, func(c *topology.Call, r topology.Record[K, V], deleted bool, old V, had bool) error {
		n := fkChange[V]{v: r.Value, deleted: deleted, old: old, had: had}
		return lref.SendRecord(c, topology.Record[K, fkChange[V]]{Key: r.Key, Value: n, Timestamp: r.Timestamp, Headers: r.Headers})
	})
	topology.Node(d.b, subNode, j.subscribe, topology.Parents(subName), topology.Stores(storeName, j.right.Name()))
	rref := topology.Node(d.b, rightNode, j.rightChange, topology.Parents(right.procs...), topology.Stores(storeName, j.right.Name()))
	attach(d, &right.next, func(c *topology.Call, r topology.Record[KO, VO], _ bool) error {
		return rref.SendRecord(c, r)
	})
	topology.Node(d.b, resolveNode, j.resolve, topology.Parents(respName), topology.Stores(j.left.Name()))
	return j.out
}

// fkChange is a left change as "<name>-left" gets it: the new value (or
// the deletion) and the value it replaced.
type fkChange[V any] struct {
	v       V
	deleted bool
	old     V
	had     bool
}

// fkJoinNodes holds what the nodes of one foreign-key join share.
type fkJoinNodes[K, V, KO, VO, VR any] struct {
	fk        func(K, V) KO
	joiner    func(K, V, VO, bool) VR
	leftJoin  bool
	fkNil     func(KO) bool
	resNil    func(VR) bool
	left      topology.StoreRef[K, V]
	right     topology.StoreRef[KO, VO]
	subs      topology.StoreRef[[]byte, []byte] // subKey(fk, pk) -> the hash of the subscribed left value
	subTopic  topology.RepartitionRef[[]byte, subscription]
	respTopic topology.RepartitionRef[[]byte, response]
	out       *Table[K, VR]
}

// foreignKey returns the encoded foreign key of a left value, or nil when
// it has none.
func (j *fkJoinNodes[K, V, KO, VO, VR]) foreignKey(k K, v V) ([]byte, error) {
	ko := j.fk(k, v)
	if j.fkNil(ko) {
		return nil, nil
	}
	ks, _ := j.right.Serdes()
	b, err := ks.Encode(ko)
	if err != nil {
		return nil, fmt.Errorf("encoding foreign key: %w", err)
	}
	if b == nil {
		b = []byte{} // a key that encodes to nothing is still a key
	}
	return b, nil
}

// leftChange subscribes a left key to its new foreign key (with the hash
// of its new value, which the response must carry to be used) and
// unsubscribes it from its old one when that differs. A key left without
// a foreign key (deleted, or a nil one) gets its result at once, with no
// round trip: a deletion (inner join, or a deleted key), or the left
// join's unmatched result. A response still in flight for it is dropped
// by resolve, since the key's stored value no longer has its hash.
func (j *fkJoinNodes[K, V, KO, VO, VR]) leftChange(c *topology.Call, r topology.Record[K, fkChange[V]]) error {
	ks, _ := j.left.Serdes()
	pk, err := ks.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encoding left key: %w", err)
	}
	// The stored bytes, not a second encoding, are what resolve hashes.
	cur, ok, err := j.left.Raw().Get(c, pk)
	if err != nil {
		return err
	}
	deleted := r.Value.deleted || !ok // a value the serde encodes as nil is not stored
	var newFK, oldFK []byte
	if !deleted {
		if newFK, err = j.foreignKey(r.Key, r.Value.v); err != nil {
			return err
		}
	}
	if r.Value.had {
		if oldFK, err = j.foreignKey(r.Key, r.Value.old); err != nil {
			return err
		}
	}
	send := func(fk []byte, s subscription) error {
		return j.subTopic.SendRecord(c, topology.Record[[]byte, subscription]{Key: fk, Value: s, Timestamp: r.Timestamp, Headers: r.Headers})
	}
	if oldFK != nil && (newFK == nil || !bytes.Equal(oldFK, newFK)) {
		if err := send(oldFK, subscription{op: opUnsubscribe, pk: pk}); err != nil {
			return err
		}
	}
	if newFK != nil {
		return send(newFK, subscription{op: opSubscribe, hash: valueHash(cur), pk: pk})
	}
	o := topology.Record[K, VR]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers}
	switch {
	case !deleted && j.leftJoin:
		var zero VO
		return j.emit(c, o, r.Value.v, zero, false)
	case deleted && j.leftJoin && r.Value.had, oldFK != nil:
		// A result may exist: the left join's for any held key, the inner
		// join's for a key that had a foreign key.
		return j.out.push(c, o, true)
	}
	return nil
}

// emit pushes joiner's result, or a deletion when it is nil.
func (j *fkJoinNodes[K, V, KO, VO, VR]) emit(c *topology.Call, o topology.Record[K, VR], v V, vo VO, found bool) error {
	if o.Value = j.joiner(o.Key, v, vo, found); j.resNil(o.Value) {
		var zero VR
		o.Value = zero
		return j.out.push(c, o, true)
	}
	return j.out.push(c, o, false)
}

// subscribe records or forgets a subscription in the task of its foreign
// key and answers a subscription with right's value there, now.
func (j *fkJoinNodes[K, V, KO, VO, VR]) subscribe(c *topology.Call, r topology.Record[[]byte, subscription]) error {
	key := subKey(r.Key, r.Value.pk)
	if r.Value.op == opUnsubscribe {
		return j.subs.Delete(c, key)
	}
	if err := j.subs.Put(c, key, r.Value.hash[:]); err != nil {
		return err
	}
	vo, found, err := j.right.Raw().Get(c, r.Key)
	if err != nil {
		return err
	}
	resp := response{hash: r.Value.hash, found: found, value: vo}
	return j.respTopic.SendRecord(c, topology.Record[[]byte, response]{Key: r.Value.pk, Value: resp, Timestamp: r.Timestamp, Headers: r.Headers})
}

// rightChange answers every subscriber of the changed right key with the
// key's new value (or its absence), each with the hash it subscribed with.
func (j *fkJoinNodes[K, V, KO, VO, VR]) rightChange(c *topology.Call, r topology.Record[KO, VO]) error {
	if j.fkNil(r.Key) {
		return nil
	}
	ks, _ := j.right.Serdes()
	fk, err := ks.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encoding right key: %w", err)
	}
	if fk == nil {
		fk = []byte{}
	}
	vo, found, err := j.right.Raw().Get(c, fk) // the store already holds the change
	if err != nil {
		return err
	}
	// Collect first: sending while ranging would interleave with the scan.
	var pks [][]byte
	var hashes [][]byte
	lo := subKey(fk, nil)
	if err := j.subs.Range(c, lo, prefixEnd(lo), func(k, h []byte) bool {
		pks, hashes = append(pks, k[len(lo):]), append(hashes, h)
		return true
	}); err != nil {
		return err
	}
	for i, pk := range pks {
		resp := response{found: found, value: vo}
		copy(resp.hash[:], hashes[i])
		if err := j.respTopic.SendRecord(c, topology.Record[[]byte, response]{Key: pk, Value: resp, Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
			return err
		}
	}
	return nil
}

// resolve turns a response into the left key's result, if the response
// answers the key's current value: it carries the hash of the value that
// subscribed, and one whose value has changed (or gone) since is stale,
// superseded by the response to the newer value (or by the result
// leftChange emitted).
func (j *fkJoinNodes[K, V, KO, VO, VR]) resolve(c *topology.Call, r topology.Record[[]byte, response]) error {
	cur, ok, err := j.left.Raw().Get(c, r.Key)
	if err != nil {
		return err
	}
	if !ok || valueHash(cur) != r.Value.hash {
		c.Count(EventStaleDropped, 1)
		return nil
	}
	lks, lvs := j.left.Serdes()
	k, err := lks.Decode(r.Key)
	if err != nil {
		return fmt.Errorf("decoding left key: %w", err)
	}
	v, err := lvs.Decode(cur)
	if err != nil {
		return fmt.Errorf("decoding left value: %w", err)
	}
	var vo VO
	if r.Value.found {
		_, rvs := j.right.Serdes()
		if vo, err = rvs.Decode(r.Value.value); err != nil {
			return fmt.Errorf("decoding right value: %w", err)
		}
	}
	o := topology.Record[K, VR]{Key: k, Timestamp: r.Timestamp, Headers: r.Headers}
	if !r.Value.found && !j.leftJoin {
		return j.out.push(c, o, true)
	}
	return j.emit(c, o, v, vo, r.Value.found)
}

// valueHash is the hash a subscription carries: the first 128 bits of
// the SHA-256 of the left value's stored bytes (Kafka Streams uses a
// 128-bit murmur3; any stable hash does, and this one is in the standard
// library). A collision would let a stale response through for a value
// with the same hash, as in Kafka Streams.
func valueHash(b []byte) [16]byte {
	s := sha256.Sum256(b)
	return [16]byte(s[:16])
}

// subKey is the subscription store's key: the foreign key, length
// prefixed, then the left key, so that the subscriptions of one foreign
// key are the keys with the prefix subKey(fk, nil).
func subKey(fk, pk []byte) []byte {
	k := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(fk)+len(pk)), uint32(len(fk)))
	return append(append(k, fk...), pk...)
}

// prefixEnd returns the first key after every key with prefix p (nil if
// there is none: p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i]++; end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// The internal topics' values start with a version byte, so that a later
// format can be told from this one in records still in flight.
const fkFormat = 1

const (
	opSubscribe   byte = 1
	opUnsubscribe byte = 2
)

// subscription is a subscription topic's value (its key is the foreign
// key): the left key, what to do, and the hash of the left value.
type subscription struct {
	op   byte
	hash [16]byte
	pk   []byte
}

type subscriptionSerde struct{}

func (subscriptionSerde) Encode(s subscription) ([]byte, error) {
	b := append(make([]byte, 0, 2+16+len(s.pk)), fkFormat, s.op)
	return append(append(b, s.hash[:]...), s.pk...), nil
}

func (subscriptionSerde) Decode(b []byte) (subscription, error) {
	if len(b) < 18 || b[0] != fkFormat || (b[1] != opSubscribe && b[1] != opUnsubscribe) {
		return subscription{}, errBadInternal
	}
	s := subscription{op: b[1], pk: bytes.Clone(b[18:])}
	copy(s.hash[:], b[2:18])
	return s, nil
}

// response is a response topic's value (its key is the left key): the
// hash the left key subscribed with, and right's value at its foreign key
// as stored (found false: none).
type response struct {
	hash  [16]byte
	found bool
	value []byte
}

type responseSerde struct{}

func (responseSerde) Encode(r response) ([]byte, error) {
	found := byte(0)
	if r.found {
		found = 1
	}
	b := append(make([]byte, 0, 2+16+len(r.value)), fkFormat, found)
	return append(append(b, r.hash[:]...), r.value...), nil
}

func (responseSerde) Decode(b []byte) (response, error) {
	if len(b) < 18 || b[0] != fkFormat || b[1] > 1 {
		return response{}, errBadInternal
	}
	r := response{found: b[1] == 1}
	copy(r.hash[:], b[2:18])
	if r.found {
		r.value = bytes.Clone(b[18:])
	}
	return r, nil
}

var errBadInternal = errors.New("dsl: malformed foreign-key join record (written by another version?)")
