package storage

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/meshguard/meshguard/models"
)

// ReadFlows streams the flows of [from, to) to fn in event-time order, a
// slice of event time at a time, for replays and backtests. fn must not
// keep the slice. The flows table is sorted by destination, so each slice
// is sorted by the server; slices bound that sort's memory.
func (c *ClickHouse) ReadFlows(ctx context.Context, from, to time.Time, slice time.Duration, fn func([]models.Flow) error) error {
	if slice <= 0 {
		slice = 10 * time.Minute
	}
	ctx, cancel := detach(ctx, 24*time.Hour)
	defer cancel()
	q := "SELECT ts_ms, flow_id, reporter, source_principal, source_workload, source_namespace, source_ip, " +
		"destination_principal, destination_workload, destination_namespace, destination_service, destination_port, " +
		"protocol, method, path, path_template, response_code, response_flags, bytes_sent, bytes_received, duration_ms, " +
		"mtls, tls_version, user_agent, request_id, trace_id, count " +
		"FROM " + c.db + ".flows WHERE ts >= ? AND ts < ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms"
	var batch []models.Flow
	for t := from; t.Before(to); t = t.Add(slice) {
		end := t.Add(slice)
		if end.After(to) {
			end = to
		}
		rows, err := c.conn.Query(ctx, q, t.Unix(), end.Unix()+1, t.UnixMilli(), end.UnixMilli())
		if err != nil {
			return fmt.Errorf("read flows %s..%s: %w", t.Format(time.RFC3339), end.Format(time.RFC3339), classify(err))
		}
		batch = batch[:0]
		for rows.Next() {
			var f models.Flow
			var id, trace string
			var reporter, srcIP string
			var mtls uint8
			if err := rows.Scan(&f.TimestampMs, &id, &reporter, &f.Source.Principal, &f.Source.Workload, &f.Source.Namespace, &srcIP,
				&f.Destination.Principal, &f.Destination.Workload, &f.Destination.Namespace, &f.Destination.Service, &f.Destination.Port,
				&f.Protocol, &f.Method, &f.Path, &f.PathTemplate, &f.ResponseCode, &f.ResponseFlags, &f.BytesSent, &f.BytesReceived,
				&f.DurationMs, &mtls, &f.TLSVersion, &f.UserAgent, &f.RequestID, &trace, &f.Count); err != nil {
				rows.Close()
				return fmt.Errorf("read flows: %w", classify(err))
			}
			copy(f.ID[:], id)
			copy(f.TraceID[:], trace)
			f.Reporter = models.ParseReporter(reporter)
			f.TLS = models.TLS(mtls)
			if ip, err := netip.ParseAddr(srcIP); err == nil {
				f.Source.IP = ip
			}
			batch = append(batch, f)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("read flows: %w", classify(err))
		}
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
	}
	return nil
}
