package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/meshguard/meshguard/consumer"
)

// BlastQuery describes the traffic a deny policy would stop, for the
// blast-radius preview respond runs before enforcing it. The source is
// matched by its principal, else its IP (plaintext callers), else its
// workload.
type BlastQuery struct {
	From, To time.Time

	SourcePrincipal string
	SourceIP        string
	SourceNamespace string
	SourceWorkload  string

	// DestinationNamespace and DestinationWorkload, when set, narrow the
	// query to the source's calls to that workload (blocking one edge).
	DestinationNamespace string
	DestinationWorkload  string

	// Inbound adds every call to the source workload (quarantine).
	Inbound bool
}

// BlastRadius is what a policy would have denied: requests, and distinct
// callers (principal, workload and IP).
type BlastRadius struct {
	Requests uint64
	Callers  uint64
}

// BlastQuerier answers blast-radius previews. Implementations are
// goroutine-safe.
type BlastQuerier interface {
	BlastRadius(ctx context.Context, q BlastQuery) (BlastRadius, error)
}

// blastCondition renders q's filter over edge_minute with ? placeholders
// for its values (bound by the driver, never spliced into the text).
func blastCondition(q BlastQuery) (string, []any, error) {
	var src string
	var args []any
	switch {
	case q.SourcePrincipal != "":
		src, args = "source_principal = ?", []any{q.SourcePrincipal}
	case q.SourceIP != "":
		src, args = "source_ip = ?", []any{q.SourceIP}
	case q.SourceWorkload != "":
		src, args = "(source_namespace = ? AND source_workload = ?)", []any{q.SourceNamespace, q.SourceWorkload}
	default:
		return "", nil, fmt.Errorf("blast radius: the query names no source")
	}
	if q.DestinationWorkload != "" {
		src = "(" + src + " AND destination_namespace = ? AND destination_workload = ?)"
		args = append(args, q.DestinationNamespace, q.DestinationWorkload)
	}
	if q.Inbound && q.SourceWorkload != "" {
		src = "(" + src + " OR (destination_namespace = ? AND destination_workload = ?))"
		args = append(args, q.SourceNamespace, q.SourceWorkload)
	}
	return src, args, nil
}

// blastQuery counts per reporter: Istio logs a request on both sides, so
// the side that saw the most stands for the traffic, never both summed.
func blastQuery(db, cond string) string {
	return `SELECT reporter, sumMerge(requests) AS r,
    uniqExact(source_principal, source_workload, source_namespace, source_ip) AS c
FROM ` + db + `.edge_minute
WHERE minute >= toDateTime(?) AND minute < toDateTime(?) AND ` + cond + `
GROUP BY reporter
ORDER BY r DESC
LIMIT 1`
}

// BlastRadius counts, from edge_minute, what q's policy would have
// denied between q.From and q.To.
func (c *ClickHouse) BlastRadius(ctx context.Context, q BlastQuery) (BlastRadius, error) {
	cond, args, err := blastCondition(q)
	if err != nil {
		return BlastRadius{}, consumer.Permanent(err)
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	rows, err := c.conn.Query(ctx, blastQuery(c.db, cond), append([]any{q.From.Unix(), q.To.Unix()}, args...)...)
	if err != nil {
		return BlastRadius{}, fmt.Errorf("blast radius: %w", classify(err))
	}
	defer rows.Close()
	var b BlastRadius
	for rows.Next() {
		var reporter string
		if err := rows.Scan(&reporter, &b.Requests, &b.Callers); err != nil {
			return BlastRadius{}, fmt.Errorf("blast radius: %w", classify(err))
		}
	}
	if err := rows.Err(); err != nil {
		return BlastRadius{}, fmt.Errorf("blast radius: %w", classify(err))
	}
	return b, nil
}

// BlastRadius counts the same over the flows kept, as edge_minute would.
func (m *Memory) BlastRadius(_ context.Context, q BlastQuery) (BlastRadius, error) {
	if _, _, err := blastCondition(q); err != nil {
		return BlastRadius{}, consumer.Permanent(err)
	}
	type caller struct{ principal, workload, namespace, ip string }
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	requests := map[string]uint64{}
	callers := map[string]map[caller]struct{}{}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.flows {
		f := &m.flows[i]
		if f.TimestampMs < from || f.TimestampMs >= to {
			continue
		}
		ip := ""
		if f.Source.Workload == "" && f.Source.Principal == "" && f.Source.IP.IsValid() {
			ip = f.Source.IP.String()
		}
		var fromSource bool
		switch {
		case q.SourcePrincipal != "":
			fromSource = f.Source.Principal == q.SourcePrincipal
		case q.SourceIP != "":
			fromSource = ip == q.SourceIP
		default:
			fromSource = f.Source.Namespace == q.SourceNamespace && f.Source.Workload == q.SourceWorkload
		}
		if q.DestinationWorkload != "" {
			fromSource = fromSource && f.Destination.Namespace == q.DestinationNamespace && f.Destination.Workload == q.DestinationWorkload
		}
		toSource := q.Inbound && q.SourceWorkload != "" &&
			f.Destination.Namespace == q.SourceNamespace && f.Destination.Workload == q.SourceWorkload
		if !fromSource && !toSource {
			continue
		}
		r := f.Reporter.String()
		requests[r] += uint64(f.Count)
		if callers[r] == nil {
			callers[r] = map[caller]struct{}{}
		}
		callers[r][caller{f.Source.Principal, f.Source.Workload, f.Source.Namespace, ip}] = struct{}{}
	}
	var b BlastRadius
	for r, n := range requests {
		if n > b.Requests || n == b.Requests && uint64(len(callers[r])) > b.Callers {
			b = BlastRadius{Requests: n, Callers: uint64(len(callers[r]))}
		}
	}
	return b, nil
}
