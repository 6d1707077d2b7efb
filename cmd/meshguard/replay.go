package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

type replayOptions struct {
	config     string
	clickhouse string
	from, to   string
	quiet      bool
}

func newReplayCmd() *cobra.Command {
	var o replayOptions
	cmd := &cobra.Command{
		Use:   "replay [FILE...]",
		Short: "Feed recorded telemetry back through detection, to backtest a configuration",
		Long: `replay runs the detect stage of --config over recorded telemetry and prints
what it would have raised. The input is either OTLP files (JSON lines, one
ExportLogsServiceRequest per line, as the collector's file exporter writes
them) or a time range of the flows table (--clickhouse DSN --from --to).
Detection runs on event time, so a day replays in minutes and raises what
it would have live. Nothing is written anywhere.`,
		RunE: func(cmd *cobra.Command, files []string) error {
			return runReplay(cmd.Context(), o, files, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "config file whose detect section to test (MESHGUARD_* overrides apply)")
	f.StringVar(&o.clickhouse, "clickhouse", "", "replay flows from this ClickHouse (DSN) instead of files")
	f.StringVar(&o.from, "from", "", "with --clickhouse: start of the range (RFC 3339)")
	f.StringVar(&o.to, "to", "", "with --clickhouse: end of the range (RFC 3339)")
	f.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	return cmd
}

func runReplay(ctx context.Context, o replayOptions, files []string, out, errOut io.Writer) error {
	cfg, err := LoadConfig(o.config, os.Environ())
	if err != nil {
		return err
	}
	if (o.clickhouse == "") == (len(files) == 0) {
		return errors.New("replay: give OTLP files or --clickhouse DSN --from --to, not both or neither")
	}
	rep := &replayReport{out: out, seen: map[string]models.Detection{}}
	// No warm start and no saved baselines: a backtest starts from what
	// it replays, so the first learning_period of it only learns.
	p, err := buildPipeline(pipelineSpec{Detect: &cfg.Detect, DetectionTaps: []consumer.Detections{rep}})
	if err != nil {
		return err
	}
	det := p.Detector
	bar := func(max int64, desc string) *progressbar.ProgressBar {
		return progressbar.NewOptions64(max, progressbar.OptionSetWriter(errOut), progressbar.OptionSetDescription(desc),
			progressbar.OptionSetVisibility(!o.quiet), progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	if o.clickhouse != "" {
		err = replayClickHouse(ctx, o, det, bar)
	} else {
		err = replayFiles(ctx, files, det, bar)
	}
	if err != nil {
		return err
	}
	det.Flush(ctx)
	rep.summary(det.Stats())
	return nil
}

func replayFiles(ctx context.Context, files []string, det *detect.Detector, bar func(int64, string) *progressbar.ProgressBar) error {
	dec := ingest.NewDecoder(ingest.DecoderConfig{Encoding: ingest.EncodingJSON})
	var flows []models.Flow
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		st, _ := f.Stat()
		b := bar(st.Size(), name)
		r := bufio.NewReaderSize(f, 1<<20)
		for line := 1; ; line++ {
			data, err := r.ReadBytes('\n')
			if len(data) > 0 {
				b.Add(len(data))
				if trimmed := strings.TrimSpace(string(data)); trimmed != "" {
					flows, err = dec.Decode(ingest.SignalLogs, []byte(trimmed), models.NewFlowIDBase(name, 0, int64(line)), flows[:0])
					if err != nil {
						f.Close()
						return fmt.Errorf("replay: %s line %d: %w", name, line, err)
					}
					if err := det.ConsumeFlows(ctx, flows); err != nil {
						f.Close()
						return err
					}
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return fmt.Errorf("replay: %s: %w", name, err)
			}
		}
		f.Close()
		b.Finish()
	}
	return nil
}

func replayClickHouse(ctx context.Context, o replayOptions, det *detect.Detector, bar func(int64, string) *progressbar.ProgressBar) error {
	from, err := time.Parse(time.RFC3339, o.from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	to, err := time.Parse(time.RFC3339, o.to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if !to.After(from) {
		return fmt.Errorf("--to %s is not after --from %s", o.to, o.from)
	}
	cfg := storage.DefaultClickHouseConfig()
	cfg.DSN = o.clickhouse
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("--clickhouse: %w", err)
	}
	ch, err := storage.NewClickHouse(cfg)
	if err != nil {
		return fmt.Errorf("--clickhouse: %w", err)
	}
	defer ch.Close()
	b := bar(int64(to.Sub(from)/time.Second), "event seconds")
	done := from
	return ch.ReadFlows(ctx, from, to, 10*time.Minute, func(flows []models.Flow) error {
		if err := det.ConsumeFlows(ctx, flows); err != nil {
			return err
		}
		last := time.UnixMilli(flows[len(flows)-1].TimestampMs)
		if last.After(done) {
			b.Add64(int64(last.Sub(done) / time.Second))
			done = last
		}
		return nil
	})
}

// replayReport prints each detection once, when first raised, and counts
// them by kind.
type replayReport struct {
	mu   sync.Mutex
	out  io.Writer
	seen map[string]models.Detection
}

func (r *replayReport) HandleDetection(_ context.Context, d models.Detection) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[d.ID]; !ok {
		fmt.Fprintf(r.out, "%s  %-20s %-8s %s -> %s: %s\n", d.WindowStart.Format(time.RFC3339), d.Kind, d.Severity,
			models.Party.String(d.Source), models.Party.String(d.Destination), d.Evidence.Summary)
	}
	r.seen[d.ID] = d
	return nil
}

func (r *replayReport) summary(st detect.Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byKind := map[models.DetectionKind]int{}
	for _, d := range r.seen {
		byKind[d.Kind]++
	}
	kinds := make([]string, 0, len(byKind))
	for k, n := range byKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	fmt.Fprintf(r.out, "\n%d flows in %d windows (%d late); %d detections: %s\n", st.Flows, st.Windows, st.Late, len(r.seen), strings.Join(kinds, ", "))
}
