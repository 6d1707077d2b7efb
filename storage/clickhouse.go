package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

// DefaultAddr is the server used when neither DSN nor Addr is set.
const DefaultAddr = "127.0.0.1:9000"

// ClickHouseConfig locates the ClickHouse server and database meshguard
// stores into. Set either DSN or Addr; with neither, DefaultAddr.
type ClickHouseConfig struct {
	// DSN in clickhouse-go form:
	// "clickhouse://user:password@host:9000/meshguard?dial_timeout=5s&compress=lz4".
	// Its path names the database; its dial_timeout, if any, wins over
	// DialTimeout, while QueryTimeout always sets the read timeout.
	DSN string `yaml:"dsn"`
	// Addr lists native-protocol addresses (host:port) when no DSN is set.
	Addr []string `yaml:"addr"`
	// Username and Password (or PasswordFile, e.g. a mounted Kubernetes
	// Secret; or MESHGUARD_CLICKHOUSE_PASSWORD), unless the DSN holds
	// them. The password is never logged (see String).
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// TLS to the server (see ClickHouseTLS).
	TLS ClickHouseTLS `yaml:"tls"`
	// Database defaults to the DSN's, else DefaultDatabase.
	Database string `yaml:"database"`

	DialTimeout time.Duration `yaml:"dial_timeout"`
	// QueryTimeout bounds each insert and query, server acknowledgement
	// included.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// RetentionDays: how long flows and their rollups are kept; 0 keeps
	// them forever. See MigrateOptions.RetentionDays.
	RetentionDays int `yaml:"retention_days"`
}

// DefaultClickHouseConfig returns the defaults; the caller still sets DSN
// or Addr.
func DefaultClickHouseConfig() ClickHouseConfig {
	return ClickHouseConfig{
		DialTimeout:   5 * time.Second,
		QueryTimeout:  30 * time.Second,
		RetentionDays: 30,
	}
}

// Validate reports every problem at once, each prefixed with its key.
func (c *ClickHouseConfig) Validate() error {
	_, err := c.options()
	return err
}

// options validates c and turns it into clickhouse-go options.
func (c *ClickHouseConfig) options() (*clickhouse.Options, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("clickhouse."+key+": "+format, args...))
	}
	opts := &clickhouse.Options{}
	switch {
	case c.DSN != "" && len(c.Addr) > 0:
		bad("dsn", "set either dsn or addr, not both")
	case c.DSN != "":
		parsed, err := clickhouse.ParseDSN(c.DSN)
		if err != nil {
			// url.Error repeats the whole DSN, password included: keep
			// only the reason.
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err
			}
			bad("dsn", "not a valid clickhouse:// DSN: %v", err)
		} else {
			opts = parsed
		}
	case len(c.Addr) == 0:
		// Neither set: a local server, as the Kafka defaults name a
		// local broker.
		opts.Addr = []string{DefaultAddr}
	default:
		for _, a := range c.Addr {
			if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
				bad("addr", "%q: want host:port", a)
			}
		}
		opts.Addr = c.Addr
	}
	c.applySecurity(opts, bad)

	db := c.Database
	switch {
	case db == "" && opts.Auth.Database != "":
		db = opts.Auth.Database
	case db == "":
		db = DefaultDatabase
	case opts.Auth.Database != "" && opts.Auth.Database != db:
		bad("database", "%q differs from the dsn's database %q", db, opts.Auth.Database)
	}
	if err := ValidDatabase(db); err != nil {
		bad("database", "%v", err)
	}
	opts.Auth.Database = db

	if c.DialTimeout <= 0 {
		bad("dial_timeout", "%v: want more than 0", c.DialTimeout)
	}
	if c.QueryTimeout <= 0 {
		bad("query_timeout", "%v: want more than 0", c.QueryTimeout)
	}
	if c.RetentionDays < 0 {
		bad("retention_days", "%d: want 0 (keep forever) or more", c.RetentionDays)
	}
	if c.DSN == "" || opts.DialTimeout == 0 {
		opts.DialTimeout = c.DialTimeout
	}
	opts.ReadTimeout = c.QueryTimeout
	return opts, errors.Join(errs...)
}

// ClickHouse stores flows, detections and actions in ClickHouse. It is a
// consumer.Flows, DetectionWriter and ActionWriter, safe for concurrent use.
type ClickHouse struct {
	conn          driver.Conn
	db            string
	addrs         []string // for errors
	user          string   // for errors
	queryTimeout  time.Duration
	retentionDays int
	insertFlows   string
	closeOnce     sync.Once
	closeErr      error

	mu           sync.Mutex
	versionKnown bool
	settings     clickhouse.Settings // for inserting flows
	rollupKnown  bool
	rollupFrom   int64 // rollupSince, once known
}

// NewClickHouse validates cfg and returns a store for it. It does not
// connect: the first call does, so a server that is down at start-up is
// an error of that call (retryable), not of the constructor.
func NewClickHouse(cfg ClickHouseConfig) (*ClickHouse, error) {
	opts, err := cfg.options()
	if err != nil {
		return nil, fmt.Errorf("clickhouse config: %w", err)
	}
	db := opts.Auth.Database
	// Every statement names its database, and the server refuses a
	// connection whose default database does not exist yet, which would
	// keep Migrate from creating it.
	opts.Auth.Database = ""
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	return &ClickHouse{
		conn:          conn,
		db:            db,
		addrs:         opts.Addr,
		user:          opts.Auth.Username,
		queryTimeout:  cfg.QueryTimeout,
		retentionDays: cfg.RetentionDays,
		// 18.16 needs the explicit column list to prepare a batch.
		insertFlows: "INSERT INTO " + db + ".flows (" + strings.Join(flowColumnNames, ", ") + ")",
	}, nil
}

// Database returns the database the store writes to.
func (c *ClickHouse) Database() string { return c.db }

// Ping checks that the server answers.
func (c *ClickHouse) Ping(ctx context.Context) error {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	return c.explain(classify(c.conn.Ping(ctx)))
}

// Migrate runs Migrate on the store's database with its retention.
func (c *ClickHouse) Migrate(ctx context.Context) error {
	ctx, cancel := detach(ctx, 10*time.Minute)
	defer cancel()
	return c.explain(classify(Migrate(ctx, c.conn, MigrateOptions{Database: c.db, RetentionDays: c.retentionDays})))
}

// DropExpiredPartitions runs DropExpiredPartitions on the store's database
// with its retention; it does nothing when retention is 0 (forever).
func (c *ClickHouse) DropExpiredPartitions(ctx context.Context) (int, error) {
	if c.retentionDays == 0 {
		return 0, nil
	}
	ctx, cancel := detach(ctx, 10*time.Minute)
	defer cancel()
	return DropExpiredPartitions(ctx, c.conn, c.db, c.retentionDays)
}

// Close closes the connections; it is safe to call more than once.
func (c *ClickHouse) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}

// insertBlockRows is how many flows go into one block on the wire. A
// batch larger than that is sent as several blocks, which the server
// squashes back into one part (min_insert_block_size_rows, 1M rows), so
// the client's column buffers stay small and are reused from block to
// block instead of growing with the batch. A variable for tests.
var insertBlockRows = 16384

// flowInsertSettings are the settings for inserting flows into server v.
func flowInsertSettings(v ServerVersion) clickhouse.Settings {
	s := clickhouse.Settings{
		// Write flows_by_source and edge_minute side by side rather than
		// one after the other: 10% off an insert's time here.
		"parallel_view_processing": 1,
	}
	if v.Modern() {
		// Take plain String columns for the LowCardinality ones and
		// convert on the server: clickhouse-go encodes LowCardinality row
		// by row through reflection, which cost more than all the rest of
		// the client's work.
		s["low_cardinality_allow_in_native_format"] = 0
		// Telemetry sets event times, so one batch may span any number of
		// days (partitions). Modern servers refuse more than 100 per insert
		// by default, and would refuse the same batch on every retry.
		s["max_partitions_per_insert_block"] = 0
	}
	return s
}

// insertSettings returns flowInsertSettings for the server, asking its
// version on first use.
func (c *ClickHouse) insertSettings() (clickhouse.Settings, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.versionKnown {
		v, err := serverVersion(c.conn)
		if err != nil {
			return nil, err
		}
		c.settings, c.versionKnown = flowInsertSettings(v), true
	}
	return c.settings, nil
}

// ConsumeFlows inserts flows as one INSERT, column by column, and returns
// nil once the server has acknowledged it.
//
// Errors retrying cannot fix (the table's columns do not match the batch)
// are Permanent; the rest (connection refused or lost, timeouts, a server
// restarting or overloaded) are plain errors: retry the same batch. A
// failed call of up to 1M flows has usually written nothing, but not
// always (a view failing after flows took the rows, a batch larger than
// the server squashes into one part), so a retry can store flows twice:
// readers that count flows use count(DISTINCT flow_id).
func (c *ClickHouse) ConsumeFlows(ctx context.Context, flows []models.Flow) error {
	if len(flows) == 0 {
		return nil
	}
	settings, err := c.insertSettings()
	if err != nil {
		return fmt.Errorf("insert %d flows: %w", len(flows), classify(err))
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(settings))

	cols := flowColumnsPool.Get().(*flowColumns)
	defer func() {
		cols.reset()
		flowColumnsPool.Put(cols)
	}()
	cols.fill(flows)

	batch, err := c.conn.PrepareBatch(ctx, c.insertFlows)
	if err != nil {
		return fmt.Errorf("insert %d flows: %w", len(flows), classify(err))
	}
	defer batch.Abort() // releases the connection if Send is never reached
	for off := 0; off < len(flows); off += insertBlockRows {
		end := min(off+insertBlockRows, len(flows))
		for i, v := range cols.values(off, end) {
			if err := batch.Column(i).Append(v); err != nil {
				// Appending does no I/O: it fails only when the table's
				// column cannot hold what meshguard sends, every time.
				return consumer.Permanent(fmt.Errorf("insert %d flows: column %s: %w", len(flows), flowColumnNames[i], err))
			}
		}
		if end < len(flows) {
			if err := batch.Flush(); err != nil {
				return fmt.Errorf("insert %d flows: %w", len(flows), classify(err))
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d flows: %w", len(flows), classify(err))
	}
	return nil
}

// WriteDetection stores a version of d (see DetectionRow.Version).
func (c *ClickHouse) WriteDetection(ctx context.Context, d DetectionRow) error {
	d, err := prepareDetection(d)
	if err != nil {
		return err
	}
	return c.insertRow(ctx, "detections",
		"detection_id, version, detected_at, window_start, window_end, kind, severity, score, "+
			"source_principal, source_workload, source_namespace, destination_workload, destination_namespace, evidence, incident_id",
		d.DetectionID, d.Version, dateTime(d.DetectedAt), dateTime(d.WindowStart), dateTime(d.WindowEnd), d.Kind, d.Severity, d.Score,
		d.SourcePrincipal, d.SourceWorkload, d.SourceNamespace, d.DestinationWorkload, d.DestinationNamespace, d.Evidence, d.IncidentID)
}

// prepareDetection checks d and fills its defaults; Memory uses it too.
func prepareDetection(d DetectionRow) (DetectionRow, error) {
	if d.DetectionID == "" {
		return d, consumer.Permanent(errors.New("write detection: empty detection id"))
	}
	if d.Evidence == "" {
		d.Evidence = "{}"
	}
	if !json.Valid([]byte(d.Evidence)) {
		return d, consumer.Permanent(fmt.Errorf("write detection %s: evidence is not JSON", d.DetectionID))
	}
	if d.Version == 0 {
		d.Version = uint64(time.Now().UnixNano())
	}
	return d, nil
}

var errEmptyActionID = errors.New("write action: empty action id")

// WriteAction appends a to the actions audit log.
func (c *ClickHouse) WriteAction(ctx context.Context, a ActionRow) error {
	if a.ActionID == "" {
		return consumer.Permanent(errEmptyActionID)
	}
	return c.insertRow(ctx, "actions",
		"action_id, at, detection_id, kind, mode, state, actor, reason, target, policy_name, policy_namespace, expires_at",
		a.ActionID, a.At, a.DetectionID, a.Kind, a.Mode, a.State, a.Actor, a.Reason, a.Target,
		a.PolicyName, a.PolicyNamespace, dateTime(a.ExpiresAt))
}

// dateTime maps the zero time, which DateTime cannot hold, to its zero
// (1970-01-01 UTC); fromDateTime maps it back and reads times as UTC.
func dateTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t
}

func fromDateTime(t time.Time) time.Time {
	if t.Unix() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

// insertRow inserts one row into table: detections and actions arrive one
// at a time, rarely.
// opContext bounds one operation by clickhouse.query_timeout. Its cancel
// takes effect a second late, on purpose: clickhouse-go's context watchdog
// (context_watchdog.go in v2.50) is told to exit without being waited for,
// so cancelling the context the moment an operation returns can let it
// close a connection that is already back in the pool, and the next
// operation on it fails with "use of closed network connection".
//
// The caller's cancellation (a shutdown, a caller's own deadline) reaches
// the operation the same second late, for the same reason: the caller's
// context is usually cancelled right after a call returns.
func (c *ClickHouse) opContext(ctx context.Context) (context.Context, func()) {
	return detach(ctx, c.queryTimeout)
}

// detach returns a context for driver calls bounded by timeout that ends a
// second after ctx does, and its cancel, which also takes effect a second
// late.
func detach(ctx context.Context, timeout time.Duration) (context.Context, func()) {
	if ctx.Err() != nil {
		return ctx, func() {} // ended already: fail now, nothing to race
	}
	op, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	late := func() { time.AfterFunc(time.Second, cancel) }
	stop := context.AfterFunc(ctx, late)
	return op, func() { stop(); late() }
}

// brokenConn reports an error of a connection closed under the operation
// (by a server restart, or by the driver after a cancel): a new connection
// can succeed at once.
func brokenConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "use of closed network connection")
}

// insertRow inserts one row, once more on a fresh connection if the first
// was found closed: single rows (detections, actions, baselines) have no
// caller that retries them.
func (c *ClickHouse) insertRow(ctx context.Context, table, columns string, values ...any) error {
	err := c.insertRowOnce(ctx, table, columns, values...)
	if err != nil && !consumer.IsPermanent(err) && brokenConn(err) && ctx.Err() == nil {
		err = c.insertRowOnce(ctx, table, columns, values...)
	}
	return err
}

func (c *ClickHouse) insertRowOnce(ctx context.Context, table, columns string, values ...any) error {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.db+"."+table+" ("+columns+")")
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, classify(err))
	}
	defer batch.Abort()
	if err := batch.Append(values...); err != nil {
		return consumer.Permanent(fmt.Errorf("insert into %s: %w", table, err)) // no I/O: a type mismatch
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", table, classify(err))
	}
	return nil
}

// detectionQuery reads the newest version of one detection: FINAL makes
// the server collapse the versions that background merges have not yet.
func detectionQuery(db string) string {
	return detectionSelect(db) + ` WHERE detection_id = ? LIMIT 1`
}

// detectionSelect reads every column of a DetectionRow, newest version
// only; scanDetection reads its rows. Callers add WHERE, ORDER and LIMIT.
func detectionSelect(db string) string {
	return `SELECT detection_id, version, detected_at, window_start, window_end,
    kind, severity, score, source_principal, source_workload, source_namespace,
    destination_workload, destination_namespace, evidence, incident_id
FROM ` + db + `.detections FINAL`
}

// scanDetection reads one row of detectionSelect.
func scanDetection(row interface{ Scan(dest ...any) error }) (DetectionRow, error) {
	var d DetectionRow
	err := row.Scan(&d.DetectionID, &d.Version, &d.DetectedAt, &d.WindowStart, &d.WindowEnd,
		&d.Kind, &d.Severity, &d.Score, &d.SourcePrincipal, &d.SourceWorkload, &d.SourceNamespace,
		&d.DestinationWorkload, &d.DestinationNamespace, &d.Evidence, &d.IncidentID)
	d.DetectedAt, d.WindowStart, d.WindowEnd = fromDateTime(d.DetectedAt), fromDateTime(d.WindowStart), fromDateTime(d.WindowEnd)
	return d, err
}

// Detection returns the newest version of detection id.
func (c *ClickHouse) Detection(ctx context.Context, id string) (DetectionRow, bool, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	d, err := scanDetection(c.conn.QueryRow(ctx, detectionQuery(c.db), id))
	if errors.Is(err, sql.ErrNoRows) {
		return DetectionRow{}, false, nil
	}
	if err != nil {
		return DetectionRow{}, false, fmt.Errorf("detection %q: %w", id, classify(err))
	}
	return d, true, nil
}

// edgeMinuteQuery reads edge_minute for minutes in [from, to): rows of one
// key may sit in parts not merged yet, so it groups by the whole key and
// merges the aggregate states.
func edgeMinuteQuery(db string) string {
	return `SELECT minute, reporter,
    source_principal, source_workload, source_namespace, source_ip,
    destination_workload, destination_namespace, destination_service,
    sumMerge(requests), sumMerge(responses_2xx), sumMerge(responses_3xx),
    sumMerge(responses_4xx), sumMerge(responses_5xx),
    sumMerge(responses_401), sumMerge(responses_403),
    sumMerge(bytes_sent), sumMerge(bytes_received),
    CAST(quantilesTDigestWeightedMerge(0.5, 0.9, 0.99)(duration_ms_quantiles) AS Array(Float64))
FROM ` + db + `.edge_minute
WHERE minute >= toDateTime(?) AND minute < toDateTime(?)
GROUP BY minute, reporter, source_principal, source_workload, source_namespace, source_ip,
    destination_workload, destination_namespace, destination_service
ORDER BY minute, destination_namespace, destination_workload, destination_service,
    source_namespace, source_workload, source_principal, source_ip, reporter`
}

// EdgeMinutes returns every edge's per-minute totals for minutes in
// [from, to), both sides (reporters) separately.
func (c *ClickHouse) EdgeMinutes(ctx context.Context, from, to time.Time) ([]EdgeMinute, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, edgeMinuteQuery(c.db), from.Unix(), to.Unix())
	if err != nil {
		return nil, fmt.Errorf("edge minutes: %w", classify(err))
	}
	defer rows.Close()
	var out []EdgeMinute
	for rows.Next() {
		var e EdgeMinute
		var q []float64
		if err := rows.Scan(&e.Minute, &e.Reporter,
			&e.SourcePrincipal, &e.SourceWorkload, &e.SourceNamespace, &e.SourceIP,
			&e.DestinationWorkload, &e.DestinationNamespace, &e.DestinationService,
			&e.Requests, &e.Responses2xx, &e.Responses3xx, &e.Responses4xx, &e.Responses5xx,
			&e.Responses401, &e.Responses403, &e.BytesSent, &e.BytesReceived, &q); err != nil {
			return nil, fmt.Errorf("edge minutes: %w", classify(err))
		}
		e.Minute = e.Minute.UTC()
		if len(q) == 3 {
			e.DurationP50, e.DurationP90, e.DurationP99 = q[0], q[1], q[2]
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("edge minutes: %w", classify(err))
	}
	return out, nil
}
