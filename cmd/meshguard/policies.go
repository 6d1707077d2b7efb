package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
)

// newPoliciesCmd is `meshguard policies`: what respond has in force, and
// the human side of it (revoke, approve, extend). Every change is audited
// in ClickHouse `actions` with the actor.
func newPoliciesCmd() *cobra.Command {
	var configPath, actor string
	cmd := &cobra.Command{
		Use:   "policies",
		Short: "List, revoke, approve or extend the policies respond wrote",
		Long: `policies works on the policies respond wrote, as the cluster (or the gitops
directory) holds them: the same state the expiry reconciler reads. It uses
the config's kubernetes, respond and clickhouse sections; every change is
audited in ClickHouse with the actor (--actor, default cli:$USER).`,
	}
	cmd.PersistentFlags().StringVar(&configPath, "config", "", "config file (YAML); every key can also be set by MESHGUARD_* variables")
	cmd.PersistentFlags().StringVar(&actor, "actor", "", "who acts, for the audit log (default cli:$USER)")

	withResponder := func(cmd *cobra.Command, f func(ctx context.Context, r *respond.Responder, who string) error) error {
		cfg, err := LoadConfig(configPath, os.Environ())
		if err != nil {
			return err
		}
		r, closeFn, err := newCLIResponder(cfg, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer closeFn()
		who := actorName(actor)
		ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
		defer cancel()
		return f(ctx, r, who)
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the actions in force: id, kind, mode, target, policy, expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := withResponder(cmd, func(ctx context.Context, r *respond.Responder, _ string) error {
				actions, err := r.List(ctx)
				printActions(cmd.OutOrStdout(), actions)
				return err
			})
			return errors.Join(err, listAllow(cmd, configPath, actor))
		},
	}
	var all bool
	revoke := &cobra.Command{
		Use:   "revoke ID | --all",
		Short: "Delete an action's policies now (--all: every action)",
		Args: func(_ *cobra.Command, args []string) error {
			if all != (len(args) == 0) || len(args) > 1 {
				return errors.New("name one action id, or --all")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return withResponder(cmd, func(ctx context.Context, r *respond.Responder, who string) error {
				ids := args
				if all {
					actions, err := r.List(ctx)
					if err != nil {
						return err
					}
					for _, a := range actions {
						ids = append(ids, a.ID)
					}
				}
				var errs []error
				for _, id := range ids {
					a, err := r.Revoke(ctx, id, who)
					if errors.Is(err, respond.ErrNotFound) && !all {
						// Not the responder's: a least-privilege ALLOW policy?
						aerr := revokeAllow(cmd, configPath, actor, id)
						if aerr == nil {
							continue
						}
						if !errors.Is(aerr, policy.ErrNotFound) {
							err = aerr
						}
					}
					if err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "revoked %s (%s %s)\n", a.ID, a.Kind, a.Target)
				}
				if all && len(ids) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no actions in force")
				}
				return errors.Join(errs...)
			})
		},
	}
	revoke.Flags().BoolVar(&all, "all", false, "revoke every action")
	approve := &cobra.Command{
		Use:   "approve ID",
		Short: "Promote a dry-run action to enforce",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withResponder(cmd, func(ctx context.Context, r *respond.Responder, who string) error {
				a, err := r.Approve(ctx, args[0], who)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (%s)\n", a.ID, a.Mode, a.Target)
				return nil
			})
		},
	}
	var by time.Duration
	extend := &cobra.Command{
		Use:   "extend ID",
		Short: "Push an action's expiry further out (--by, default 1h)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withResponder(cmd, func(ctx context.Context, r *respond.Responder, who string) error {
				a, err := r.Extend(ctx, args[0], who, by)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: expires %s\n", a.ID, a.ExpiresAt.UTC().Format(time.RFC3339))
				return nil
			})
		},
	}
	extend.Flags().DurationVar(&by, "by", time.Hour, "how much longer")
	cmd.AddCommand(list, revoke, approve, extend)
	cmd.AddCommand(newAllowCmds(&configPath, &actor)...)
	return cmd
}

// newCLIResponder builds a Responder for a person at a terminal: no
// leader election (people act on any replica's policies), audit to
// ClickHouse.
func newCLIResponder(cfg Config, logTo io.Writer) (*respond.Responder, func(), error) {
	rc := cfg.Respond
	rc.LeaderElection.Enabled = false
	spec := pipelineSpec{Respond: &rc, Log: newLogger(cfg.Log, logTo)}
	if rc.Backend != respond.BackendGitOps || cfg.Kubernetes.Kubeconfig != "" {
		kube, err := cfg.Kubernetes.RESTConfig()
		if err != nil {
			return nil, nil, err
		}
		spec.RespondDeps.Kube = kube
	}
	store, err := storage.NewClickHouse(cfg.ClickHouse)
	if err != nil {
		return nil, nil, err
	}
	spec.Actions, spec.Blast = store, store
	p, err := buildPipeline(spec)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return p.Responder, func() { store.Close() }, nil
}

func printActions(w io.Writer, actions []models.Action) {
	if len(actions) == 0 {
		fmt.Fprintln(w, "no actions in force")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tMODE\tTARGET\tPOLICY\tEXPIRES")
	for _, a := range actions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/%s\t%s\n", a.ID, a.Kind, a.Mode, a.Target,
			a.PolicyNamespace, a.PolicyName, a.ExpiresAt.UTC().Format(time.RFC3339))
	}
	tw.Flush()
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}
