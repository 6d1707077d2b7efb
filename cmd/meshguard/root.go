package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "meshguard",
		Short: "Anomaly detection and threat response for service meshes",
		Long: `meshguard reads the telemetry a service mesh already emits (Envoy access
logs, spans and metrics as OTLP, through Kafka), stores it in ClickHouse,
scores every service-to-service flow against learned baselines and responds
to attacks with mesh policies and alerts.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newServeCmd(),
		newMigrateCmd(),
		newConfigCmd(),
		newDemoCmd(),
		newSimulateCmd(),
		newPoliciesCmd(),
		newReplayCmd(),
		newPostureCmd(),
		newReportCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "meshguard", version)
		},
	}
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check a config file or list the keys"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a config file for serve (with MESHGUARD_* overrides) and report every problem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := LoadServeConfig(args[0], os.Environ()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	}, &cobra.Command{
		Use:   "keys",
		Short: "List every config key, its environment variable and its default",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "%-34s %-42s %s\n", "KEY", "ENVIRONMENT", "DEFAULT")
			fmt.Fprintln(cmd.OutOrStdout(), strings.Join(configKeys(), "\n"))
		},
	})
	return cmd
}

// newLogger builds the one logger every stage gets.
func newLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

var stderr io.Writer = os.Stderr
