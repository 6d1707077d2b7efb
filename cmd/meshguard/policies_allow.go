package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/cmd/meshguard/api"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
)

// allowEnv is what the least-privilege subcommands work with: the config,
// the store, and (when a cluster is configured) a Rollout and the
// responder's resolver.
type allowEnv struct {
	cfg     Config
	store   *storage.ClickHouse
	rollout *policy.Rollout // nil without a cluster
	resolve respond.Resolver
	who     string
}

// withAllow builds an allowEnv from the config and runs f. needCluster:
// the step writes to the cluster (a gitops-only setup has none).
func withAllow(cmd *cobra.Command, configPath, actor string, needCluster bool, timeout time.Duration,
	f func(ctx context.Context, e *allowEnv) error) error {
	return withStore(configPath, os.Environ(), func(cfg Config, store *storage.ClickHouse) error {
		return runAllow(cmd, cfg, store, actor, needCluster, timeout, f)
	})
}

// runAllow is withAllow once the config and the store are open.
func runAllow(cmd *cobra.Command, cfg Config, store *storage.ClickHouse, actor string, needCluster bool, timeout time.Duration,
	f func(ctx context.Context, e *allowEnv) error) error {
	e := &allowEnv{cfg: cfg, store: store, resolve: respond.ConventionResolver, who: actorName(actor)}
	if needCluster || cfg.Respond.Backend != respond.BackendGitOps || cfg.Kubernetes.Kubeconfig != "" {
		kube, err := cfg.Kubernetes.RESTConfig()
		if err != nil {
			if needCluster {
				return err
			}
		} else {
			dyn, err := dynamic.NewForConfig(kube)
			if err != nil {
				return fmt.Errorf("kubernetes: %w", err)
			}
			cs, err := kubernetes.NewForConfig(kube)
			if err != nil {
				return fmt.Errorf("kubernetes: %w", err)
			}
			e.rollout = policy.NewRollout(dyn, cfg.Respond, store, store, newLogger(cfg.Log, cmd.ErrOrStderr()))
			e.resolve = respond.KubeResolver(cs)
		}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	return f(ctx, e)
}

// newAllowCmds are `policies suggest`, `verdicts` and `promote`: least
// privilege learned from the stored traffic (package policy).
func newAllowCmds(configPath, actor *string) []*cobra.Command {
	var ns, wl, since, out, format string
	var apply bool
	suggest := &cobra.Command{
		Use:   "suggest --out DIR",
		Short: "Suggest one least-privilege ALLOW policy per destination workload from its stored traffic",
		Long: `suggest learns, for each destination workload, an Istio ALLOW AuthorizationPolicy
that admits the mTLS principals that called it over --since (and, where they
are a stable set, their methods, path templates and ports). Traffic that was
part of a detection, callers whose edge is younger than detect.learning_period,
and callers without an attested principal are not admitted; each policy says
what it would have denied (its blast radius). --out DIR gets one YAML file per
policy (in dry-run), a kustomization.yaml and suggestions.json; --apply also
applies them, in dry-run, to the cluster, with your credentials (meshguard's
service account may not write ALLOW policies). Promote with 'policies promote'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			period, err := policy.ParseSince(since)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if out == "" {
				return errors.New("--out DIR is required: the directory the policies are written to")
			}
			return withAllow(cmd, *configPath, *actor, apply, 10*time.Minute, func(ctx context.Context, e *allowEnv) error {
				now := time.Now()
				o := policy.DefaultOptions(now.Add(-period), now)
				o.LearningPeriod, o.Margin = e.cfg.Detect.LearningPeriod, e.cfg.Detect.Hold
				ss, err := policy.Learn(ctx, e.store, policy.Scope{Namespace: ns, Workload: wl}, o, e.resolve, e.cfg.Respond)
				if err != nil {
					return err
				}
				files, err := policy.WriteDir(out, ss, e.cfg.Respond.Instance, true, now)
				if err != nil {
					return err
				}
				if format == "json" {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					if err := enc.Encode(ss); err != nil {
						return err
					}
				} else {
					printSuggestions(cmd.OutOrStdout(), ss)
					fmt.Fprintf(cmd.OutOrStdout(), "wrote %d files to %s\n", len(files), out)
				}
				if !apply {
					return nil
				}
				var errs []error
				for _, s := range ss {
					if s.Skipped != "" {
						continue
					}
					a, err := e.rollout.Apply(ctx, s, e.who)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "applied %s/%s in dry-run (%s)\n", a.PolicyNamespace, a.ID, a.Target)
				}
				return errors.Join(errs...)
			})
		},
	}
	suggest.Flags().StringVar(&ns, "namespace", "", "only destinations in this namespace")
	suggest.Flags().StringVar(&wl, "workload", "", "only this destination workload")
	suggest.Flags().StringVar(&since, "since", "7d", "the soak period learned from (a Go duration, or days: 7d)")
	suggest.Flags().StringVar(&out, "out", "", "directory for the policies, kustomization.yaml and suggestions.json")
	suggest.Flags().StringVar(&format, "format", "table", "table or json (stdout)")
	suggest.Flags().BoolVar(&apply, "apply", false, "also apply the policies to the cluster, in dry-run")

	verdicts := &cobra.Command{
		Use:   "verdicts [ID]",
		Short: "What the dry-run ALLOW policies would have denied since they were applied",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAllow(cmd, *configPath, *actor, true, time.Minute, func(ctx context.Context, e *allowEnv) error {
				ids := args
				if len(ids) == 0 {
					staged, err := e.rollout.List(ctx)
					if err != nil {
						return err
					}
					for _, s := range staged {
						ids = append(ids, s.ID)
					}
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTARGET\tMODE\tSINCE\tALLOWED\tWOULD DENY\tNO VERDICT\tDENIED CALLERS")
				var errs []error
				for _, id := range ids {
					st, v, err := e.rollout.Verdicts(ctx, id)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					mode, since := "enforce", "-"
					if st.DryRun {
						mode, since = "dry-run", st.Since.UTC().Format(time.RFC3339)
					}
					var callers []string
					for _, c := range v.DeniedCallers {
						callers = append(callers, c.Caller+" ("+strconv.FormatUint(c.Requests, 10)+")")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", st.ID, st.Target, mode, since,
						v.Allowed, v.Denied, v.Unknown, strings.Join(callers, ", "))
				}
				tw.Flush()
				return errors.Join(errs...)
			})
		},
	}
	var minSoak time.Duration
	promote := &cobra.Command{
		Use:   "promote ID",
		Short: "Enforce a dry-run ALLOW policy after a clean soak (refused when the dry-run would have denied anything)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAllow(cmd, *configPath, *actor, true, time.Minute, func(ctx context.Context, e *allowEnv) error {
				e.rollout.MinSoak = minSoak
				a, err := e.rollout.Promote(ctx, args[0], e.who)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (%s): %s\n", a.ID, a.Mode, a.Target, a.Reason)
				return nil
			})
		},
	}
	promote.Flags().DurationVar(&minSoak, "min-soak", 24*time.Hour, "how long the policy must have been in dry-run")
	return []*cobra.Command{suggest, verdicts, promote}
}

// revokeAllow revokes ALLOW policy id, for `policies revoke` when the
// responder has no action of that id.
func revokeAllow(cmd *cobra.Command, configPath, actor, id string) error {
	return withAllow(cmd, configPath, actor, true, time.Minute, func(ctx context.Context, e *allowEnv) error {
		a, err := e.rollout.Revoke(ctx, id, e.who)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "revoked %s (%s %s)\n", a.ID, a.Kind, a.Target)
		return nil
	})
}

func printSuggestions(w io.Writer, ss []policy.Suggestion) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tPOLICY\tRULES\tREQUESTS\tWOULD DENY\tNOT ADMITTED")
	for _, s := range ss {
		var why []string
		for _, c := range s.NotAdmitted {
			why = append(why, c.Caller+": "+c.Reason)
		}
		name := s.Name
		if s.Skipped != "" {
			name = "skipped: " + s.Skipped
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%d\t%d\t%d (%d callers)\t%s\n", s.Namespace, s.Workload, name, len(s.Rules),
			s.Requests, s.BlastRequests, s.BlastCallers, strings.Join(why, "; "))
	}
	tw.Flush()
	for _, s := range ss {
		for _, c := range s.NotAdmitted {
			if c.Reason == policy.ExcludedUnattested {
				fmt.Fprintf(w, "note: %s/%s: %s called without an mTLS-attested principal (%d requests); it cannot be admitted by principal and the policy denies it\n",
					s.Namespace, s.Workload, c.Caller, c.Requests)
			}
		}
	}
}

func actorName(actor string) string {
	if actor != "" {
		return actor
	}
	return "cli:" + currentUser()
}

// suggestFunc is the API's suggestions over store: the responder's
// resolver when a cluster answers (else app=<workload>), its guardrails,
// detect's learning period and hold.
func suggestFunc(cfg Config, store *storage.ClickHouse) api.SuggestFunc {
	resolve := respond.Resolver(respond.ConventionResolver)
	if kube, err := cfg.Kubernetes.RESTConfig(); err == nil && (cfg.Respond.Backend != respond.BackendGitOps || cfg.Kubernetes.Kubeconfig != "") {
		if cs, err := kubernetes.NewForConfig(kube); err == nil {
			resolve = respond.KubeResolver(cs)
		}
	}
	return func(ctx context.Context, scope policy.Scope, since time.Duration) ([]policy.Suggestion, error) {
		now := time.Now()
		o := policy.DefaultOptions(now.Add(-since), now)
		o.LearningPeriod, o.Margin = cfg.Detect.LearningPeriod, cfg.Detect.Hold
		return policy.Learn(ctx, store, scope, o, resolve, cfg.Respond)
	}
}

// listAllow prints the least-privilege ALLOW policies in the cluster, for
// `policies list`; nothing without a cluster.
func listAllow(cmd *cobra.Command, configPath, actor string) error {
	return withAllow(cmd, configPath, actor, false, time.Minute, func(ctx context.Context, e *allowEnv) error {
		if e.rollout == nil {
			return nil
		}
		staged, err := e.rollout.List(ctx)
		if err != nil || len(staged) == 0 {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\nALLOW POLICY\tTARGET\tMODE\tDRY-RUN SINCE\tRULES\tBLAST RADIUS")
		for _, s := range staged {
			mode, since := "enforce", "-"
			if s.DryRun {
				mode, since = "dry-run", s.Since.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%d\t%d\n", s.Namespace, s.ID, s.Target, mode, since, s.Rules, s.BlastRequests)
		}
		return tw.Flush()
	})
}
