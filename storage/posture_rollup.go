package storage

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The edge rollups (migrations/010_edge_tls_rollup.sql) behind the
// posture, the report's trend and the dashboard's graph: a span is cut
// into the whole hours inside it (edge_tls_hour), the whole minutes left
// at its ends (edge_tls_minute) and the seconds left (flows, aggregated
// into the same states on the fly), and the three are merged in one
// GROUP BY. So every read answers what one GROUP BY over flows would, to
// the second, while reading about one row per edge and hour.

// rollupMigration is the version of the migration that creates the
// rollups: flows older than the hour after it was recorded are read from
// flows (the migration copies nothing in).
const rollupMigration = 10

// rollupSamples is how many plaintext request ids plaintext_samples
// keeps per bucket: twice MaxPostureSamples, so that an id stored twice
// (a retried batch) rarely takes a distinct one's place.
const rollupSamples = 2 * MaxPostureSamples

// rollupTier is a rollup table and the width of its buckets, coarsest
// first; the level after the last is flows itself.
type rollupTier struct {
	table, column string
	width         int64 // seconds
}

var rollupTiers = []rollupTier{
	{"edge_tls_hour", "hour", 3600},
	{"edge_tls_minute", "minute", 60},
}

// rollupKey is the rollups' key without the bucket, as the tables name
// it; flows yield source_ip through rollupKeyFromFlows.
var rollupKey = []string{"reporter", "source_principal", "source_workload", "source_namespace", "source_ip",
	"destination_workload", "destination_namespace", "destination_service", "destination_port"}

const rollupKeyFromFlows = `reporter, source_principal, source_workload, source_namespace,
    if(source_workload = '' AND source_principal = '', source_ip, '') AS source_ip,
    destination_workload, destination_namespace, destination_service, destination_port`

// rollupStates are the rollups' state columns with the expression over
// flows that edge_tls_*_mv stores in each: the seconds read from flows
// must give states of the same type and meaning. TestEdgeRollupMatchesFlows
// holds the two to the same answers.
var rollupStates = map[string]string{
	"max_destination_principal": "maxState(CAST(destination_principal AS String))",
	"requests":                  "sumState(toUInt64(count))",
	"responses_4xx":             "sumState(toUInt64(if(response_code >= 400 AND response_code < 500, count, 0)))",
	"responses_5xx":             "sumState(toUInt64(if(response_code >= 500 AND response_code < 600, count, 0)))",
	"mtls_requests":             "sumState(toUInt64(if(mtls = 1, count, 0)))",
	"plaintext_requests":        "sumState(toUInt64(if(mtls = 2, count, 0)))",
	"unknown_requests":          "sumState(toUInt64(if(mtls NOT IN (1, 2), count, 0)))",
	"first_seen":                "minState(toUInt32(ts))",
	"last_seen":                 "maxState(toUInt32(ts))",
	"plaintext_first_seen":      "minState(toUInt32(if(mtls = 2, toUInt32(ts), 4294967295)))",
	"plaintext_last_seen":       "maxState(toUInt32(if(mtls = 2, toUInt32(ts), 0)))",
	"plaintext_samples":         "groupArrayIfState(" + strconv.Itoa(rollupSamples) + ")(request_id, mtls = 2 AND request_id != '')",
	"service_flows":             "sumState(toUInt64(" + serviceEvidence + "))",
	"service_requests":          "sumState(toUInt64(if(" + serviceEvidence + ", count, 0)))",
}

// serviceEvidence: a flow that says which workload its Service host
// reached (ServiceWorkload). Bit 8 is models.ResolvedDestinationWorkload
// (TestResolvedDestinationBit).
const serviceEvidence = `destination_service != '' AND destination_workload != '' AND identity_conflict = 0
        AND (reporter = 'destination' OR bitAnd(identity_resolved, 8) != 0)`

// span is [lo, hi) in Unix seconds.
type span struct{ lo, hi int64 }

// rollupPlan says what each level reads: plan[i] for rollupTiers[i],
// plan[len(rollupTiers)] for flows.
type rollupPlan [][]span

// planRollup covers [from, to) (Unix seconds) with the coarsest whole
// buckets that fit, reading everything before since (the rollups'
// start) from flows.
func planRollup(from, to, since int64) rollupPlan {
	plan := make(rollupPlan, len(rollupTiers)+1)
	raw := len(rollupTiers)
	from = max(from, 0)
	if from >= to {
		return plan
	}
	if cut := min(to, max(since, from)); cut > from {
		plan.add(raw, span{from, cut})
		from = cut
	}
	plan.cover(from, to, 0)
	return plan
}

// cover covers [lo, hi) from level on: the whole buckets of that level,
// and what is left at either end with the finer levels.
func (p rollupPlan) cover(lo, hi int64, level int) {
	if lo >= hi {
		return
	}
	if level == len(rollupTiers) {
		p.add(level, span{lo, hi})
		return
	}
	w := rollupTiers[level].width
	a, b := (lo+w-1)/w*w, hi/w*w
	if a >= b {
		p.cover(lo, hi, level+1)
		return
	}
	p.cover(lo, a, level+1)
	p.add(level, span{a, b})
	p.cover(b, hi, level+1)
}

// add appends s to level, joined with the span before when they touch.
func (p rollupPlan) add(level int, s span) {
	l := p[level]
	if n := len(l); n > 0 && l[n-1].hi == s.lo {
		l[n-1].hi = s.hi
		return
	}
	p[level] = append(l, s)
}

// within is the WHERE condition selecting spans of column.
func within(column string, spans []span) string {
	conds := make([]string, len(spans))
	for i, s := range spans {
		conds[i] = fmt.Sprintf("(%s >= toDateTime(%d) AND %s < toDateTime(%d))", column, s.lo, column, s.hi)
	}
	return strings.Join(conds, " OR ")
}

// rollupSource is the subquery of the plan's rows: the key, the states
// named (in rollupStates), and first, when day is set, the UTC day of
// each bucket as day. It is "" when the plan reads nothing.
func rollupSource(db string, plan rollupPlan, states []string, day bool) string {
	var parts []string
	for level, spans := range plan {
		if len(spans) == 0 {
			continue
		}
		var cols []string
		if level == len(rollupTiers) {
			if day {
				cols = append(cols, "toDate(ts) AS day")
			}
			cols = append(cols, rollupKeyFromFlows)
			for _, s := range states {
				cols = append(cols, rollupStates[s]+" AS "+s)
			}
			group := strings.Join(rollupKey, ", ")
			if day {
				group = "day, " + group
			}
			parts = append(parts, "SELECT "+strings.Join(cols, ", ")+"\n    FROM "+db+".flows WHERE "+within("ts", spans)+
				"\n    GROUP BY "+group)
			continue
		}
		t := rollupTiers[level]
		if day {
			cols = append(cols, "toDate("+t.column+") AS day")
		}
		cols = append(append(cols, rollupKey...), states...)
		parts = append(parts, "SELECT "+strings.Join(cols, ", ")+"\n    FROM "+db+"."+t.table+" WHERE "+within(t.column, spans))
	}
	return strings.Join(parts, "\n    UNION ALL\n    ")
}

// rollupSince returns the first second the rollups hold every flow of:
// the hour after migration 010 was recorded, or never (MaxInt64) while it
// is not. A flow stored before the views existed with an event time past
// that hour would be missed; ingest stores flows as they happen.
func (c *ClickHouse) rollupSince(ctx context.Context) (int64, error) {
	c.mu.Lock()
	known, since := c.rollupKnown, c.rollupFrom
	c.mu.Unlock()
	if known {
		return since, nil
	}
	var n uint64
	var at time.Time
	q := "SELECT count(), min(applied_at) FROM " + c.db + ".schema_migrations WHERE version = " + strconv.Itoa(rollupMigration)
	if err := c.conn.QueryRow(ctx, q).Scan(&n, &at); err != nil {
		return 0, classify(err)
	}
	if n == 0 {
		return math.MaxInt64, nil
	}
	since = at.Unix()/3600*3600 + 3600
	c.mu.Lock()
	c.rollupKnown, c.rollupFrom = true, since
	c.mu.Unlock()
	return since, nil
}

// rollupQuery is outer with {rollup} replaced by the rollup subquery of
// [from, to) with states (and the day, when day is set). ok is false
// when the span is empty.
func (c *ClickHouse) rollupQuery(ctx context.Context, outer string, from, to time.Time, states []string, day bool) (q string, ok bool, err error) {
	since, err := c.rollupSince(ctx)
	if err != nil {
		return "", false, err
	}
	src := rollupSource(c.db, planRollup(from.Unix(), to.Unix(), since), states, day)
	if src == "" {
		return "", false, nil
	}
	return strings.Replace(outer, "{rollup}", src, 1), true, nil
}

// wrapErr is err with what failed, or nil.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
