package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/meshguard/meshguard/models"
)

// DryRunVerdicts is what Istio's dry-run ALLOW policies said of one
// workload's inbound requests over a period, as its proxy logged them
// (flows.dry_run_allow): requests allowed, denied, and not said.
type DryRunVerdicts struct {
	Allowed, Denied, Unknown uint64
	// DeniedCallers are the callers of the denied requests, most first
	// (at most MaxDeniedCallers).
	DeniedCallers []DeniedCaller
}

// DeniedCaller is one caller a dry-run ALLOW policy would have denied.
type DeniedCaller struct {
	Caller   string
	Requests uint64
}

// MaxDeniedCallers bounds DryRunVerdicts.DeniedCallers.
const MaxDeniedCallers = 10

// DryRunReader reads dry-run verdicts back. Implementations are
// goroutine-safe.
type DryRunReader interface {
	DryRunVerdicts(ctx context.Context, namespace, workload string, from, to time.Time) (DryRunVerdicts, error)
}

// DryRunVerdicts counts the destination proxy's verdicts on requests to
// namespace/workload between from and to.
func (c *ClickHouse) DryRunVerdicts(ctx context.Context, namespace, workload string, from, to time.Time) (DryRunVerdicts, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	var v DryRunVerdicts
	rows, err := c.conn.Query(ctx, `SELECT dry_run_allow, sum(toUInt64(count)) FROM `+c.db+`.flows
WHERE ts >= toDateTime(?) AND ts < toDateTime(?) AND destination_namespace = ? AND destination_workload = ? AND reporter = 'destination'
GROUP BY dry_run_allow`, from.Unix(), to.Unix(), namespace, workload)
	if err != nil {
		return v, fmt.Errorf("dry-run verdicts: %w", classify(err))
	}
	for rows.Next() {
		var verdict uint8
		var n uint64
		if err := rows.Scan(&verdict, &n); err != nil {
			rows.Close()
			return v, fmt.Errorf("dry-run verdicts: %w", classify(err))
		}
		switch models.DryRun(verdict) {
		case models.DryRunAllowed:
			v.Allowed += n
		case models.DryRunDenied:
			v.Denied += n
		default:
			v.Unknown += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || v.Denied == 0 {
		if err != nil {
			err = fmt.Errorf("dry-run verdicts: %w", classify(err))
		}
		return v, err
	}
	rows, err = c.conn.Query(ctx, `SELECT if(source_principal != '', source_principal,
        if(source_workload != '', concat(source_namespace, '/', source_workload), source_ip)) AS caller,
    sum(toUInt64(count)) AS n
FROM `+c.db+`.flows
WHERE ts >= toDateTime(?) AND ts < toDateTime(?) AND destination_namespace = ? AND destination_workload = ? AND reporter = 'destination' AND dry_run_allow = ?
GROUP BY caller ORDER BY n DESC, caller LIMIT ?`, from.Unix(), to.Unix(), namespace, workload, uint8(models.DryRunDenied), MaxDeniedCallers)
	if err != nil {
		return v, fmt.Errorf("dry-run denied callers: %w", classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var d DeniedCaller
		if err := rows.Scan(&d.Caller, &d.Requests); err != nil {
			return v, fmt.Errorf("dry-run denied callers: %w", classify(err))
		}
		v.DeniedCallers = append(v.DeniedCallers, d)
	}
	if err := rows.Err(); err != nil {
		return v, fmt.Errorf("dry-run denied callers: %w", classify(err))
	}
	return v, nil
}

var _ DryRunReader = (*ClickHouse)(nil)
