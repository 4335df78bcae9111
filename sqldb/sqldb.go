// Package sqldb names the SQL databases exactly's database packages (the
// outbox relay, the transactional sink) work with, and opens them through
// database/sql with well-kept drivers: pgx for PostgreSQL,
// go-sql-driver/mysql for MariaDB and MySQL, and modernc.org/sqlite (pure
// Go, no cgo) for SQLite, the embedded default.
//
// A Dialect holds what differs between them that these packages need:
// the driver name and the parameter placeholder. SQL that differs beyond
// that lives with the package that issues it.
package sqldb

import (
	"database/sql"
	"fmt"
	"strings"

	_ "github.com/go-sql-driver/mysql" // driver "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"
)

// Dialect is a SQL database family.
type Dialect int

const (
	// Postgres is PostgreSQL, through pgx. The production target.
	Postgres Dialect = iota + 1
	// MySQL is MariaDB or MySQL, through go-sql-driver/mysql (InnoDB).
	MySQL
	// SQLite is SQLite, through modernc.org/sqlite: embedded, one
	// writer at a time.
	SQLite
)

// Dialects lists every dialect, in the order above.
var Dialects = []Dialect{Postgres, MySQL, SQLite}

// String returns the dialect's name as ParseDialect accepts it.
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case MySQL:
		return "mysql"
	case SQLite:
		return "sqlite"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// ParseDialect parses a dialect name: postgres (or postgresql, pgx),
// mysql (or mariadb), sqlite (or sqlite3).
func ParseDialect(s string) (Dialect, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "postgres", "postgresql", "pgx":
		return Postgres, nil
	case "mysql", "mariadb":
		return MySQL, nil
	case "sqlite", "sqlite3":
		return SQLite, nil
	}
	return 0, fmt.Errorf("unknown database dialect %q (want postgres, mysql or sqlite)", s)
}

// DriverName is the database/sql driver name this package registers for
// the dialect.
func (d Dialect) DriverName() string {
	switch d {
	case Postgres:
		return "pgx"
	case MySQL:
		return "mysql"
	case SQLite:
		return "sqlite"
	}
	return ""
}

// Placeholder returns the n-th (1-based) query parameter: $n for
// PostgreSQL, ? otherwise.
func (d Dialect) Placeholder(n int) string {
	if d == Postgres {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// Rebind rewrites a query written with ? placeholders into the dialect's
// form. It does not look inside string literals: keep ? out of them.
func (d Dialect) Rebind(query string) string {
	if d != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Open opens a database of the dialect. For MySQL it requires
// parseTime=true in the DSN's parameters (added when missing) so that
// timestamps scan into time.Time. For SQLite it sets a busy timeout and
// WAL journaling (added when the DSN names neither) so that a writer waits
// for another instead of failing with SQLITE_BUSY.
func Open(d Dialect, dsn string) (*sql.DB, error) {
	switch d {
	case MySQL:
		dsn = withParam(dsn, "parseTime", "parseTime=true")
	case SQLite:
		dsn = withParam(dsn, "_pragma=busy_timeout", "_pragma=busy_timeout(10000)")
		dsn = withParam(dsn, "_pragma=journal_mode", "_pragma=journal_mode(WAL)")
	case Postgres:
	default:
		return nil, fmt.Errorf("sqldb: unknown dialect %v", d)
	}
	db, err := sql.Open(d.DriverName(), dsn)
	if err != nil {
		return nil, fmt.Errorf("sqldb: opening %s: %w", d, err)
	}
	return db, nil
}

// withParam appends param to dsn's query parameters unless dsn already
// mentions key.
func withParam(dsn, key, param string) string {
	if strings.Contains(dsn, key) {
		return dsn
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&" + param
	}
	return dsn + "?" + param
}
