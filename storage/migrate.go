package storage

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshguard/meshguard/consumer"
)

// DefaultDatabase is the database meshguard's tables live in unless
// configured otherwise.
const DefaultDatabase = "meshguard"

//go:embed migrations/*.sql
var migrationFiles embed.FS

var (
	migrationName = regexp.MustCompile(`^([0-9]{3})_([a-z0-9_]+)\.sql$`)
	// Identifiers cannot be bound as parameters, so the database name goes
	// into DDL text: only plain names pass.
	identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
)

// ValidDatabase reports whether name is a database name meshguard accepts:
// letters, digits and underscores, not starting with a digit, at most 63.
func ValidDatabase(name string) error {
	if !identifier.MatchString(name) {
		return fmt.Errorf("database name %q: want letters, digits and _, not starting with a digit, at most 63 characters", name)
	}
	return nil
}

// ServerVersion is a ClickHouse server's release, e.g. 18.16.1 or 26.7.2.
type ServerVersion struct{ Major, Minor, Patch int }

// ParseServerVersion parses what `SELECT version()` returns.
func ParseServerVersion(s string) (ServerVersion, error) {
	parts := strings.SplitN(s, ".", 4)
	var v ServerVersion
	var err error
	for i, p := range []*int{&v.Major, &v.Minor, &v.Patch} {
		if i >= len(parts) {
			break
		}
		if *p, err = strconv.Atoi(parts[i]); err != nil {
			return ServerVersion{}, fmt.Errorf("server version %q: %w", s, err)
		}
	}
	if len(parts) < 2 {
		return ServerVersion{}, fmt.Errorf("server version %q: want MAJOR.MINOR[.PATCH...]", s)
	}
	return v, nil
}

func (v ServerVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Modern reports whether the server gets the modern variant of the schema:
// TTL (with ttl_only_drop_parts and materialize_ttl_recalculate_only),
// column codecs and LowCardinality. That is 24.1 and later, the releases
// meshguard supports besides 18.16 and checks against (chDB, 26.7). Older
// servers (Debian's 18.16) get the legacy variant: the same tables,
// columns and queries, without TTL and codecs, and String where modern
// servers get LowCardinality(String).
func (v ServerVersion) Modern() bool { return v.Major >= 24 }

func serverVersion(conn driver.Conn) (ServerVersion, error) {
	sv, err := conn.ServerVersion()
	if err != nil {
		return ServerVersion{}, err
	}
	return ServerVersion{int(sv.Version.Major), int(sv.Version.Minor), int(sv.Version.Patch)}, nil
}

// Migration is one embedded migrations/NNN_name.sql file, rendered for one
// server version and database.
type Migration struct {
	Version    int
	Name       string
	Checksum   string // sha256 of the file as embedded, before rendering
	Statements []string
}

// renderData is what migration templates see:
//
//	{{.DB}}                  the database, validated as a plain identifier
//	{{.LC}}                  LowCardinality(String) on modern servers, String on 18.16
//	{{.Codec "Delta, ZSTD"}} " CODEC(Delta, ZSTD)" on modern servers, "" on 18.16
//	{{if .Modern}}...{{end}} anything else only modern servers understand
type renderData struct {
	DB     string
	Modern bool
}

// LC is the type of low-cardinality string columns. 18.16 gets plain
// String: its LowCardinality is experimental (it needs
// allow_experimental_low_cardinality_type, which modern servers reject as
// unknown), breaks materialized views whose target column is a String, and
// made inserts about 40% slower when measured here.
func (d renderData) LC() string {
	if d.Modern {
		return "LowCardinality(String)"
	}
	return "String"
}

func (d renderData) Codec(spec string) string {
	if !d.Modern {
		return ""
	}
	return " CODEC(" + spec + ")"
}

// RenderMigrations returns every embedded migration in version order, with
// its statements as server v would receive them for database db. Migrate
// runs exactly these; tests run them through other engines (chDB).
func RenderMigrations(v ServerVersion, db string) ([]Migration, error) {
	if err := ValidDatabase(db); err != nil {
		return nil, err
	}
	files, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Migration
	for _, file := range files {
		m := migrationName.FindStringSubmatch(path.Base(file))
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must be NNN_lower_snake.sql", file)
		}
		version, _ := strconv.Atoi(m[1])
		if len(out) > 0 && out[len(out)-1].Version == version {
			return nil, fmt.Errorf("migration %s: version %d used twice", file, version)
		}
		raw, err := migrationFiles.ReadFile(file)
		if err != nil {
			return nil, err
		}
		tmpl, err := template.New(file).Option("missingkey=error").Parse(string(raw))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", file, err)
		}
		var sql strings.Builder
		if err := tmpl.Execute(&sql, renderData{DB: db, Modern: v.Modern()}); err != nil {
			return nil, fmt.Errorf("migration %s: %w", file, err)
		}
		sum := sha256.Sum256(raw)
		out = append(out, Migration{
			Version:    version,
			Name:       m[2],
			Checksum:   hex.EncodeToString(sum[:]),
			Statements: splitStatements(sql.String()),
		})
	}
	return out, nil
}

// splitStatements cuts a migration at lines ending in ";" (the native
// protocol takes one statement per query), dropping "--" comment lines.
func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		if strings.HasSuffix(trimmed, ";") {
			cur.WriteString(strings.TrimSuffix(strings.TrimRight(line, " \t\r"), ";"))
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return out
}

// MigrateOptions configures Migrate.
type MigrateOptions struct {
	// Database to create and migrate; DefaultDatabase when empty.
	Database string
	// RetentionDays bounds how long flows and edge_minute rows are kept;
	// 0 keeps them forever. Modern servers enforce it with a table TTL,
	// (re)set on every Migrate. 18.16 has no TTL: call
	// DropExpiredPartitions periodically there.
	RetentionDays int
}

// Migrate brings database opts.Database to the newest schema: it creates
// the database, applies the embedded migrations not yet recorded in
// schema_migrations, records them, and sets the retention TTL.
//
// It is safe to run again (applied versions are skipped) and safe to run
// from several processes at once. ClickHouse has no transactions or locks
// to serialise them, so safety comes from the statements instead: every
// migration statement is idempotent (CREATE ... IF NOT EXISTS; the server
// serialises DDL on one table name, and "already exists" from a lost race
// counts as done), a version is recorded only after all its statements
// succeeded, and a version recorded twice is harmless (read with DISTINCT).
// Two racing processes therefore both run the same idempotent statements
// and both end with the same schema. A migration that cannot be written
// idempotently must not be added without a real lock.
//
// Errors that waiting cannot fix (a statement the server rejects, bad
// credentials, an invalid database name) are Permanent; the rest (the
// server down or starting) are worth retrying.
func Migrate(ctx context.Context, conn driver.Conn, opts MigrateOptions) error {
	return classifyMigrate(migrate(ctx, conn, opts))
}

func migrate(ctx context.Context, conn driver.Conn, opts MigrateOptions) error {
	db := opts.Database
	if db == "" {
		db = DefaultDatabase
	}
	if opts.RetentionDays < 0 {
		return consumer.Permanent(fmt.Errorf("migrate: retention days %d: want 0 (keep forever) or more", opts.RetentionDays))
	}
	v, err := serverVersion(conn)
	if err != nil {
		return fmt.Errorf("migrate: server version: %w", err)
	}
	migrations, err := RenderMigrations(v, db)
	if err != nil {
		return consumer.Permanent(fmt.Errorf("migrate: %w", err))
	}

	for _, stmt := range bootstrapStatements(db) {
		if err := execIdempotent(ctx, conn, stmt); err != nil {
			return fmt.Errorf("migrate %s: %w", db, err)
		}
	}
	applied, err := appliedVersions(ctx, conn, db)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", db, err)
	}
	for _, m := range migrations {
		if applied[m.Version] {
			continue
		}
		for i, stmt := range m.Statements {
			if err := execIdempotent(ctx, conn, stmt); err != nil {
				return fmt.Errorf("migrate %s: %03d_%s statement %d: %w", db, m.Version, m.Name, i+1, err)
			}
		}
		if err := recordMigration(ctx, conn, db, m, v); err != nil {
			return fmt.Errorf("migrate %s: record %03d_%s: %w", db, m.Version, m.Name, err)
		}
	}
	if v.Modern() {
		if err := applyRetentionTTL(ctx, conn, db, opts.RetentionDays); err != nil {
			return fmt.Errorf("migrate %s: retention: %w", db, err)
		}
	}
	return nil
}

// accessCodes are server error codes for who is asking rather than what:
// unknown user, wrong password, failed authentication, access denied.
var accessCodes = map[int32]bool{192: true, 193: true, 497: true, 516: true}

// classifyMigrate is classify, and also makes access errors permanent:
// Migrate runs at start-up, where waiting cannot fix credentials, while a
// writer keeps its batch until someone fixes them.
func classifyMigrate(err error) error {
	var exc *clickhouse.Exception
	if errors.As(err, &exc) && accessCodes[exc.Code] && !consumer.IsPermanent(err) {
		return consumer.Permanent(err)
	}
	return classify(err)
}

// bootstrapStatements create the database and the table that records
// which migrations ran.
func bootstrapStatements(db string) []string {
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		"CREATE TABLE IF NOT EXISTS " + db + `.schema_migrations (
    version        UInt32,
    name           String,
    checksum       String,
    applied_at     DateTime('UTC'),
    server_version String
) ENGINE = MergeTree ORDER BY version`,
	}
}

// Server error codes for an object that exists already: with IF NOT
// EXISTS they only appear when a concurrent Migrate created it between
// the server's check and its create.
const (
	codeTableAlreadyExists    = 57
	codeDatabaseAlreadyExists = 82
	// 18.16 has no ADD COLUMN IF NOT EXISTS: a column added twice (a
	// re-run, a racing replica) fails with ILLEGAL_COLUMN "... already
	// exists", which is done too. Modern servers get IF NOT EXISTS.
	codeIllegalColumn = 44
)

func execIdempotent(ctx context.Context, conn driver.Conn, stmt string) error {
	err := conn.Exec(ctx, stmt)
	var exc *clickhouse.Exception
	if errors.As(err, &exc) && (exc.Code == codeTableAlreadyExists || exc.Code == codeDatabaseAlreadyExists) {
		return nil
	}
	if errors.As(err, &exc) && exc.Code == codeIllegalColumn && strings.Contains(exc.Message, "already exists") {
		return nil
	}
	return err
}

func appliedVersions(ctx context.Context, conn driver.Conn, db string) (map[int]bool, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+db+".schema_migrations")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[int(v)] = true
	}
	return applied, rows.Err()
}

func recordMigration(ctx context.Context, conn driver.Conn, db string, m Migration, v ServerVersion) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name, checksum, applied_at, server_version)")
	if err != nil {
		return err
	}
	defer batch.Abort()
	if err := batch.Append(uint32(m.Version), m.Name, m.Checksum, time.Now().UTC(), v.String()); err != nil {
		return err
	}
	return batch.Send()
}
