package storage

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// retentionTables are the tables retention applies to, with the DateTime
// column their day partitions (toYYYYMMDD) are cut on. detections and
// actions are small and an audit trail: they are kept.
var retentionTables = []struct{ table, column string }{
	{"flows", "ts"},
	{"flows_by_source", "ts"},
	{"edge_minute", "minute"},
	{"edge_tls_hour", "hour"},
	{"edge_tls_minute", "minute"},
}

// retentionTTL is the TTL clause for days of retention on column.
func retentionTTL(column string, days int) string {
	return fmt.Sprintf("%s + toIntervalDay(%d)", column, days)
}

// retentionStatements returns the ALTERs that make the TTL of db's
// tables match days, given each table's engine_full from system.tables.
// The server then recomputes the TTL of existing parts in the background
// (materialize_ttl_recalculate_only: it reads ts, it does not rewrite the
// parts) and drops the parts whose rows have all expired.
func retentionStatements(db string, days int, engineFull map[string]string) []string {
	var out []string
	for _, t := range retentionTables {
		current := engineFull[t.table]
		hasTTL := strings.Contains(current, " TTL ")
		switch {
		case days == 0 && hasTTL:
			out = append(out, "ALTER TABLE "+db+"."+t.table+" REMOVE TTL")
		case days > 0 && !strings.Contains(current, " TTL "+retentionTTL(t.column, days)+" "):
			out = append(out, "ALTER TABLE "+db+"."+t.table+" MODIFY TTL "+retentionTTL(t.column, days))
		}
	}
	return out
}

func applyRetentionTTL(ctx context.Context, conn driver.Conn, db string, days int) error {
	rows, err := conn.Query(ctx, "SELECT name, engine_full FROM system.tables WHERE database = ?", db)
	if err != nil {
		return err
	}
	defer rows.Close()
	engineFull := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			return err
		}
		// A trailing space lets retentionStatements match a TTL clause that
		// ends the definition as well as one followed by SETTINGS.
		engineFull[name] = engine + " "
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, stmt := range retentionStatements(db, days, engineFull) {
		if err := conn.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// partitionsQuery lists the partitions of tables (an array) in database.
const partitionsQuery = `SELECT DISTINCT table, partition_id FROM system.parts
WHERE database = ? AND active AND has(?, table) ORDER BY table, partition_id`

var dayPartition = regexp.MustCompile(`^[0-9]{8}$`)

// partitionExpired reports whether the day partition id (YYYYMMDD, UTC)
// holds only rows older than days before now: the whole day ended before
// the cutoff.
func partitionExpired(id string, now time.Time, days int) bool {
	if !dayPartition.MatchString(id) {
		return false
	}
	day, err := time.Parse("20060102", id)
	if err != nil {
		return false
	}
	cutoff := now.UTC().Add(-time.Duration(days) * 24 * time.Hour)
	return !day.AddDate(0, 0, 1).After(cutoff)
}

// DropExpiredPartitions drops every day partition of flows,
// flows_by_source, edge_minute and the edge rollups in database db whose whole day is older
// than days, and returns how many it dropped. Dropping a partition is a
// cheap metadata operation, unlike deleting rows.
//
// It is how retention works on servers without TTL (18.16): call it
// periodically (hourly is plenty). It works on modern servers too, where
// the TTL Migrate sets does the same on its own. days must be at least 1.
func DropExpiredPartitions(ctx context.Context, conn driver.Conn, db string, days int) (int, error) {
	if err := ValidDatabase(db); err != nil {
		return 0, err
	}
	if days < 1 {
		return 0, fmt.Errorf("drop expired partitions: days %d: want at least 1", days)
	}
	tables := make([]string, len(retentionTables))
	for i, t := range retentionTables {
		tables[i] = t.table
	}
	rows, err := conn.Query(ctx, partitionsQuery, db, tables)
	if err != nil {
		return 0, fmt.Errorf("drop expired partitions in %s: %w", db, err)
	}
	type part struct{ table, id string }
	var expired []part
	now := time.Now()
	for rows.Next() {
		var p part
		if err := rows.Scan(&p.table, &p.id); err != nil {
			rows.Close()
			return 0, err
		}
		if slices.Contains(tables, p.table) && partitionExpired(p.id, now, days) {
			expired = append(expired, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for i, p := range expired {
		// p.table is one of retentionTables and p.id matched dayPartition:
		// nothing read from the server reaches the statement unchecked.
		stmt := "ALTER TABLE " + db + "." + p.table + " DROP PARTITION ID '" + p.id + "'"
		if err := conn.Exec(ctx, stmt); err != nil {
			return i, fmt.Errorf("drop expired partitions: %s.%s partition %s: %w", db, p.table, p.id, err)
		}
	}
	return len(expired), nil
}
