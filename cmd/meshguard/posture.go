package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/posture"
	"github.com/meshguard/meshguard/storage"
)

// newPostureCmd is `meshguard posture`: the zero-trust posture of the
// stored traffic and the cluster's policies.
func newPostureCmd() *cobra.Command {
	var configPath, format, root string
	var since time.Duration
	var maxEdges int
	cmd := &cobra.Command{
		Use:   "posture",
		Short: "mTLS coverage, plaintext edges, PeerAuthentication modes, the STRICT gap and ALLOW coverage",
		Long: `posture reads the flows stored in ClickHouse over --since and, when the config
names a cluster (kubernetes.kubeconfig, or meshguard runs in a pod), its
PeerAuthentications, AuthorizationPolicies and workloads. It prints the share
of requests over mTLS, in plaintext and of unknown transport per namespace,
workload and edge; the plaintext edges with first and last seen and sample
request ids; the workloads with no mesh identity; each workload's mTLS mode
and where it comes from; the edges a namespace-wide STRICT would break; and
the workloads no ALLOW AuthorizationPolicy covers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: want table or json", format)
			}
			if since <= 0 {
				return fmt.Errorf("--since %v: want a positive duration, e.g. 24h", since)
			}
			cfg, err := LoadConfig(configPath, os.Environ())
			if err != nil {
				return err
			}
			r, closeFn, err := newPostureReader(cfg, root)
			if err != nil {
				return err
			}
			defer closeFn()
			r.Options.MaxEdges = maxEdges
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			to := time.Now().UTC()
			p, err := r.Posture(ctx, to.Add(-since), to)
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(p)
			}
			printPosture(cmd.OutOrStdout(), p)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "config file (YAML); every key can also be set by MESHGUARD_* variables")
	f.DurationVar(&since, "since", 24*time.Hour, "how far back to read flows")
	f.StringVar(&format, "format", "table", "table or json")
	f.StringVar(&root, "root-namespace", posture.DefaultRootNamespace, "Istio's root namespace (meshConfig.rootNamespace), where mesh-wide policies live")
	f.IntVar(&maxEdges, "max-edges", posture.DefaultMaxEdges, "list at most this many edges, the busiest (plaintext edges and gaps are listed in full)")
	return cmd
}

// newPostureReader reads flows from the config's ClickHouse and policies
// from its cluster, when it names one.
func newPostureReader(cfg Config, root string) (*posture.Reader, func(), error) {
	store, err := storage.NewClickHouse(cfg.ClickHouse)
	if err != nil {
		return nil, nil, err
	}
	r, err := postureReaderFor(cfg, store, root)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return r, func() { store.Close() }, nil
}

// postureReaderFor reads flows from store and policies from the config's
// cluster, when it names one (kubernetes.kubeconfig, or running in a pod).
func postureReaderFor(cfg Config, store *storage.ClickHouse, root string) (*posture.Reader, error) {
	r := &posture.Reader{Edges: store, RootNamespace: root}
	if cfg.Kubernetes.Kubeconfig != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		kube, err := cfg.Kubernetes.RESTConfig()
		if err != nil {
			return nil, fmt.Errorf("posture: %w", err)
		}
		r.Kube = kube
	}
	return r, nil
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

func modeText(m *posture.ModeInForce) string {
	if m == nil {
		return "-"
	}
	s := string(m.Mode) + " (" + string(m.Level)
	if m.Policy != "" {
		s += " " + m.Policy
	}
	s += ")"
	if m.Uncertain {
		s += "?"
	}
	return s
}

// printPosture writes p as tables, one section each. Names come from
// telemetry: tabwriter output is plain text, and control characters are
// replaced so they cannot drive the terminal.
func printPosture(w io.Writer, p *posture.Posture) {
	clean := strings.NewReplacer("\t", " ", "\n", " ", "\r", " ", "\x1b", "?")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(cols ...string) {
		for i := range cols {
			cols[i] = clean.Replace(cols[i])
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	section := func(title string) {
		tw.Flush()
		fmt.Fprintf(w, "\n%s\n", title)
	}
	fmt.Fprintf(w, "posture %s .. %s: %d requests, mTLS %s, plaintext %s, unknown %s\n",
		p.From.Format(time.RFC3339), p.To.Format(time.RFC3339), p.Total.Requests,
		pct(p.Total.MTLSShare), pct(p.Total.PlaintextShare), pct(p.Total.UnknownShare))
	if !p.ClusterRead {
		fmt.Fprintln(w, "no cluster named (kubernetes.kubeconfig): modes, STRICT gaps and ALLOW coverage left out")
	}
	section("NAMESPACES (inbound)")
	line("NAMESPACE", "WORKLOADS", "REQUESTS", "MTLS", "PLAINTEXT", "UNKNOWN", "MODE")
	for _, n := range p.Namespaces {
		line(n.Name, fmt.Sprint(n.Workloads), fmt.Sprint(n.Requests), pct(n.MTLSShare), pct(n.PlaintextShare), pct(n.UnknownShare), modeText(n.Mode))
	}
	section("WORKLOADS (inbound)")
	line("WORKLOAD", "REQUESTS", "MTLS", "PLAINTEXT", "UNKNOWN", "IDENTITY", "MODE", "ALLOW")
	for _, wl := range p.Workloads {
		allow := "-"
		if wl.Allow != nil {
			allow = wl.Allow.State
		}
		mode := modeText(wl.Mode)
		for port, m := range wl.PortModes {
			mode += fmt.Sprintf("; :%d %s", port, modeText(&m))
		}
		line(wl.Namespace+"/"+wl.Name, fmt.Sprint(wl.Inbound.Requests), pct(wl.Inbound.MTLSShare), pct(wl.Inbound.PlaintextShare),
			pct(wl.Inbound.UnknownShare), wl.Identity, mode, allow)
	}
	section(fmt.Sprintf("EDGES (%d of %d, busiest first)", len(p.Edges), p.EdgeCount))
	line("SOURCE", "DESTINATION", "PORT", "REQUESTS", "MTLS", "PLAINTEXT", "UNKNOWN")
	for _, e := range p.Edges {
		line(e.Source.Name(), e.Destination.Name(), fmt.Sprint(e.Port), fmt.Sprint(e.Requests), pct(e.MTLSShare), pct(e.PlaintextShare), pct(e.UnknownShare))
	}
	section("PLAINTEXT EDGES")
	line("SOURCE", "DESTINATION", "PORT", "PLAINTEXT", "FIRST SEEN", "LAST SEEN", "SAMPLE REQUEST IDS")
	for _, e := range p.PlaintextEdges {
		line(e.Source.Name(), e.Destination.Name(), fmt.Sprint(e.Port), fmt.Sprint(e.Plaintext),
			e.PlaintextFirstSeen.Format(time.RFC3339), e.PlaintextLastSeen.Format(time.RFC3339), strings.Join(e.SampleRequestIDs, ","))
	}
	section("NO MESH IDENTITY")
	for _, n := range p.NoIdentity {
		line(n.Name())
	}
	if p.ClusterRead {
		section("IF THE NAMESPACE WENT STRICT")
		line("NAMESPACE", "VERDICT", "SOURCE", "DESTINATION", "PORT", "PLAINTEXT", "UNKNOWN")
		for _, g := range p.Gaps {
			for _, set := range []struct {
				verdict string
				edges   []posture.Edge
			}{{"breaks", g.Breaks}, {"unverified", g.Unverified}, {"exempt", g.Exempt}} {
				for _, e := range set.edges {
					line(g.Namespace, set.verdict, e.Source.Name(), e.Destination.Name(), fmt.Sprint(e.Port), fmt.Sprint(e.Plaintext), fmt.Sprint(e.Unknown))
				}
			}
		}
		section("NO ALLOW POLICY (allowed by default)")
		for _, u := range p.Uncovered {
			line(u.Name())
		}
	}
	tw.Flush()
}

// servePosture is serve's posture source: its store, and its cluster when
// the config names one (a cluster that cannot be configured is logged and
// left out: the posture then has no modes).
func servePosture(cfg Config, store *storage.ClickHouse, log *slog.Logger) *posture.Reader {
	r, err := postureReaderFor(cfg, store, posture.DefaultRootNamespace)
	if err != nil {
		log.Warn("posture: no cluster; modes and coverage left out", "err", err)
		r = &posture.Reader{Edges: store, RootNamespace: posture.DefaultRootNamespace}
	}
	return r
}
