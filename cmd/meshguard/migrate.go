package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/storage"
)

func newMigrateCmd() *cobra.Command {
	var configPath, dsn string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the ClickHouse schema (safe to run twice)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := os.Environ()
			if dsn != "" {
				env = append(env, "MESHGUARD_CLICKHOUSE_DSN="+dsn)
			}
			return withStore(configPath, env, func(_ Config, store *storage.ClickHouse) error {
				if err := store.Migrate(cmd.Context()); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "schema up to date")
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "config file (YAML)")
	cmd.Flags().StringVar(&dsn, "clickhouse", "", "ClickHouse DSN, e.g. clickhouse://127.0.0.1:9000/meshguard (overrides clickhouse.dsn)")
	return cmd
}
