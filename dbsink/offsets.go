package dbsink

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"

	"github.com/exactly-stream/exactly/sqldb"
)

// tp is a topic partition.
type tp struct {
	topic string
	part  int32
}

func (t tp) String() string { return t.topic + "/" + strconv.Itoa(int(t.part)) }

func compareTP(a, b tp) int {
	return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.part, b.part))
}

// claim is what taking a partition found: the epoch now owned and the next
// offset to apply (-1: none stored).
type claim struct {
	epoch, next int64
}

// offsetsSQL holds the statements on the offsets table, in the dialect's
// form.
type offsetsSQL struct {
	bump, read, advance, deadLetter, readAll string
}

func newOffsetsSQL(d sqldb.Dialect, t Tables) offsetsSQL {
	insert := "INSERT INTO " + t.Offsets + " (sink_name, topic, partition_id, next_offset, owner_epoch, owner) VALUES (?, ?, ?, -1, 1, ?) "
	lock := " FOR UPDATE"
	var bump string
	switch d {
	case sqldb.MySQL:
		bump = insert + "ON DUPLICATE KEY UPDATE owner_epoch = owner_epoch + 1, owner = VALUES(owner), updated_at = CURRENT_TIMESTAMP(6)"
	default:
		bump = insert + "ON CONFLICT (sink_name, topic, partition_id) DO UPDATE SET owner_epoch = " + t.Offsets +
			".owner_epoch + 1, owner = excluded.owner, updated_at = CURRENT_TIMESTAMP"
		if d == sqldb.SQLite {
			lock = "" // the transaction holds the database's write lock
		}
	}
	where := " WHERE sink_name = ? AND topic = ? AND partition_id = ?"
	return offsetsSQL{
		bump: d.Rebind(bump),
		read: d.Rebind("SELECT next_offset, owner_epoch FROM " + t.Offsets + where + lock),
		// The fence: the row moves only while the epoch is the one this
		// member took. next_offset only grows, so MySQL, which counts
		// changed rows, reports 1 exactly when the row matched.
		advance: d.Rebind("UPDATE " + t.Offsets + " SET next_offset = ?, updated_at = CURRENT_TIMESTAMP" + where + " AND owner_epoch = ?"),
		deadLetter: d.Rebind("INSERT INTO " + t.DeadLetters +
			" (sink_name, topic, partition_id, record_offset, record_key, record_value, error) VALUES (?, ?, ?, ?, ?, ?, ?)"),
		readAll: d.Rebind("SELECT topic, partition_id, next_offset, owner_epoch, owner FROM " + t.Offsets + " WHERE sink_name = ?"),
	}
}

// claimPartitions takes parts for this member in one transaction: it bumps
// each partition's owner epoch (creating its row when missing) and reads
// its next offset. The bump waits for the row lock held by any transaction
// in flight that advances the partition (a zombie's included), and the read
// comes after it, so it sees every write an earlier owner can ever commit:
// an earlier owner's later transactions no longer match the epoch.
func (s *Sink) claimPartitions(ctx context.Context, parts []tp) (map[tp]claim, error) {
	parts = slices.SortedFunc(slices.Values(parts), compareTP) // one lock order for every member
	tx, err := s.cfg.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("beginning the claim of %d partitions: %w", len(parts), err)
	}
	defer tx.Rollback()
	if err := s.idle.Apply(ctx, tx); err != nil {
		return nil, fmt.Errorf("beginning the claim of %d partitions: %w", len(parts), err)
	}
	out := make(map[tp]claim, len(parts))
	for _, p := range parts {
		if _, err := tx.ExecContext(ctx, s.sql.bump, s.cfg.name, p.topic, p.part, s.cfg.owner()); err != nil {
			return nil, fmt.Errorf("bumping the owner epoch of %s: %w", p, err)
		}
		var c claim
		if err := tx.QueryRowContext(ctx, s.sql.read, s.cfg.name, p.topic, p.part).Scan(&c.next, &c.epoch); err != nil {
			return nil, fmt.Errorf("reading the offset of %s: %w", p, err)
		}
		out[p] = c
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("committing the claim of %d partitions: %w", len(parts), err)
	}
	return out, nil
}

// advance moves p's next offset to next inside tx if p's owner epoch is
// still epoch. It reports false when it is not: another member took p.
func (s *Sink) advance(ctx context.Context, tx *sql.Tx, p tp, epoch, next int64) (bool, error) {
	res, err := tx.ExecContext(ctx, s.sql.advance, next, s.cfg.name, p.topic, p.part, epoch)
	if err != nil {
		return false, fmt.Errorf("advancing the offset of %s: %w", p, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("advancing the offset of %s: %w", p, err)
	}
	return n == 1, nil
}

// Offset is a partition's row in the offsets table.
type Offset struct {
	Topic     string
	Partition int32
	// Next is the next offset to apply, -1 while none was applied.
	Next int64
	// Epoch is the owner epoch: how often the partition was taken.
	Epoch int64
	// Owner is the client ID of the member that took it last.
	Owner string
}

// ReadOffsets returns the rows of sink name in the offsets table of t,
// sorted by topic and partition.
func ReadOffsets(ctx context.Context, db *sql.DB, d sqldb.Dialect, t Tables, name string) ([]Offset, error) {
	rows, err := db.QueryContext(ctx, newOffsetsSQL(d, t).readAll, name)
	if err != nil {
		return nil, fmt.Errorf("reading the offsets of sink %s: %w", name, err)
	}
	defer rows.Close()
	var out []Offset
	for rows.Next() {
		var o Offset
		if err := rows.Scan(&o.Topic, &o.Partition, &o.Next, &o.Epoch, &o.Owner); err != nil {
			return nil, fmt.Errorf("reading the offsets of sink %s: %w", name, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the offsets of sink %s: %w", name, err)
	}
	slices.SortFunc(out, func(a, b Offset) int { return compareTP(tp{a.Topic, a.Partition}, tp{b.Topic, b.Partition}) })
	return out, nil
}
