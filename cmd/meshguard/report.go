package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/posture"
	"github.com/meshguard/meshguard/report"
	"github.com/meshguard/meshguard/storage"
)

// defaultReportSpan is the report's period when --from is not given:
// clickhouse.retention_days' default.
const defaultReportSpan = 30 * 24 * time.Hour

// newReportCmd is `meshguard report`: the compliance report.
func newReportCmd() *cobra.Command {
	var configPath, format, out, from, to, root string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "The compliance report: mTLS coverage, policies, incidents and actions mapped to NIST, PCI DSS and SOC 2 controls",
		Long: `report reads the flows, detections and audit log stored in ClickHouse between
--from and --to (RFC 3339 times or dates, UTC; default the last 30 days) and,
when the config names a cluster, its PeerAuthentications and
AuthorizationPolicies. It writes one report as JSON (the model), Markdown,
HTML or PDF: mTLS coverage and its trend per day, plaintext flows,
identities, policies in force and every change to them, detections and
incidents with time to detect and respond, every action with its actor, and
the controls of NIST SP 800-207 and 800-204A/B, PCI DSS v4.0 and SOC 2 each
with its evidence and a pass or gap verdict.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(report.Formats, format) {
				return fmt.Errorf("--format %q: want one of %s", format, strings.Join(report.Formats, ", "))
			}
			end, err := parseReportTime("--to", to, time.Now().UTC())
			if err != nil {
				return err
			}
			start, err := parseReportTime("--from", from, end.Add(-defaultReportSpan))
			if err != nil {
				return err
			}
			if !start.Before(end) {
				return fmt.Errorf("--from %s is not before --to %s", start.Format(time.RFC3339), end.Format(time.RFC3339))
			}
			var rep *report.Report
			err = withStore(configPath, os.Environ(), func(cfg Config, store *storage.ClickHouse) error {
				pr, err := postureReaderFor(cfg, store, root)
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
				defer cancel()
				rep, err = (&report.Reader{Store: store, Posture: pr}).Report(ctx, start, end)
				return err
			})
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := report.Render(&buf, rep, format); err != nil {
				return err
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(buf.Bytes())
				return err
			}
			if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%s, %d bytes): %d controls pass, %d gap\n", out, format, buf.Len(), rep.Passed, rep.Gapped)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "config file (YAML); every key can also be set by MESHGUARD_* variables")
	f.StringVar(&from, "from", "", "start of the period: RFC 3339 time or YYYY-MM-DD, UTC (default 30 days before --to)")
	f.StringVar(&to, "to", "", "end of the period, exclusive: RFC 3339 time or YYYY-MM-DD (default now)")
	f.StringVar(&format, "format", "md", "md, html, pdf or json")
	f.StringVar(&out, "out", "", "write to this file instead of stdout")
	f.StringVar(&root, "root-namespace", posture.DefaultRootNamespace, "Istio's root namespace (meshConfig.rootNamespace)")
	return cmd
}

// parseReportTime reads --from or --to; empty is def.
func parseReportTime(flag, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, err := report.ParseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %w", flag, err)
	}
	return t, nil
}
