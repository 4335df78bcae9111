package dbsink

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/exactly-stream/exactly/sqldb"
)

// Tables names the sink's tables.
type Tables struct {
	// Offsets holds one row per (sink, topic, partition): the next offset
	// to apply and the owner epoch. The default value is
	// exactly_sink_offsets.
	Offsets string
	// DeadLetters holds the records handlers rejected as malformed. The
	// default value is exactly_sink_dead_letters.
	DeadLetters string
}

// DefaultTables returns the default table names.
func DefaultTables() Tables {
	return Tables{Offsets: "exactly_sink_offsets", DeadLetters: "exactly_sink_dead_letters"}
}

// columnTypes are the types of the sink's columns in a dialect.
type columnTypes struct {
	name, integer, bigint, bytes, text, now, suffix string
}

func typesOf(d sqldb.Dialect) columnTypes {
	switch d {
	case sqldb.Postgres:
		return columnTypes{"VARCHAR(255)", "INTEGER", "BIGINT", "BYTEA", "TEXT", "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP", ""}
	case sqldb.MySQL:
		// 191 characters of utf8mb4 keep a three-column key within
		// InnoDB's index limit.
		return columnTypes{"VARCHAR(191)", "INT", "BIGINT", "LONGBLOB", "TEXT", "TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)", " ENGINE=InnoDB"}
	default:
		return columnTypes{"TEXT", "INTEGER", "INTEGER", "BLOB", "TEXT", "TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP", ""}
	}
}

// Schema returns the SQL that creates the sink's tables in dialect d, one
// statement per element, each creating its table if it does not exist.
//
// The offsets table: sink_name is the sink's name (its consumer group),
// next_offset the next offset to apply (-1 while none was), owner_epoch the
// epoch its current owner took, owner that owner's client ID.
//
// The dead-letter table: one row per rejected record, keyed by its
// position, with its key, value and the error.
func Schema(d sqldb.Dialect, t Tables) []string {
	c := typesOf(d)
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  sink_name    %s NOT NULL,
  topic        %s NOT NULL,
  partition_id %s NOT NULL,
  next_offset  %s NOT NULL,
  owner_epoch  %s NOT NULL,
  owner        %s NOT NULL,
  updated_at   %s,
  PRIMARY KEY (sink_name, topic, partition_id)
)%s`, t.Offsets, c.name, c.name, c.integer, c.bigint, c.bigint, c.name, c.now, c.suffix),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  sink_name     %s NOT NULL,
  topic         %s NOT NULL,
  partition_id  %s NOT NULL,
  record_offset %s NOT NULL,
  record_key    %s,
  record_value  %s,
  error         %s NOT NULL,
  created_at    %s,
  PRIMARY KEY (sink_name, topic, partition_id, record_offset)
)%s`, t.DeadLetters, c.name, c.name, c.integer, c.bigint, c.bytes, c.bytes, c.text, c.now, c.suffix),
	}
}

// SchemaSQL is Schema as one script, statements ended by semicolons.
func SchemaSQL(d sqldb.Dialect, t Tables) string {
	return strings.Join(Schema(d, t), ";\n\n") + ";\n"
}

// EnsureSchema creates the sink's tables when they are missing.
func EnsureSchema(ctx context.Context, db *sql.DB, d sqldb.Dialect, t Tables) error {
	for _, stmt := range Schema(d, t) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("creating the sink's tables: %w", err)
		}
	}
	return nil
}

// CheckDatabase refuses a database on which the owner epoch cannot fence a
// zombie's writes: on MariaDB/MySQL an offsets table in an engine without
// transactions and row locks (anything but InnoDB; MyISAM would commit a
// zombie's writes statement by statement); on SQLite an in-memory database
// (each connection of a pool would see its own). PostgreSQL gives the
// guarantee at every isolation level (see the package documentation).
func CheckDatabase(ctx context.Context, db *sql.DB, d sqldb.Dialect, t Tables) error {
	switch d {
	case sqldb.MySQL:
		for _, table := range []string{t.Offsets, t.DeadLetters} {
			var engine sql.NullString
			err := db.QueryRowContext(ctx, "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", table).Scan(&engine)
			if err != nil {
				return fmt.Errorf("reading the engine of %s: %w", table, err)
			}
			if !strings.EqualFold(engine.String, "InnoDB") {
				return fmt.Errorf("%w: table %s uses the %s engine; the sink needs InnoDB (transactions and row locks)", ErrUnsafeDatabase, table, engine.String)
			}
		}
	case sqldb.SQLite:
		var file string
		rows, err := db.QueryContext(ctx, "PRAGMA database_list")
		if err != nil {
			return fmt.Errorf("reading the database list: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var seq int
			var name string
			if err := rows.Scan(&seq, &name, &file); err != nil {
				return fmt.Errorf("reading the database list: %w", err)
			}
			if name == "main" {
				break
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading the database list: %w", err)
		}
		if file == "" {
			return fmt.Errorf("%w: an in-memory or temporary SQLite database is private to one connection; give the sink a file", ErrUnsafeDatabase)
		}
	}
	return nil
}
