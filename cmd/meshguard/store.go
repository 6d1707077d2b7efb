package main

import (
	"github.com/meshguard/meshguard/storage"
)

// withStore loads the config at path (env: the MESHGUARD_* variables that
// override it) and runs f with the config's ClickHouse store, closed when
// f returns: the set-up every one-shot command shares.
func withStore(path string, env []string, f func(Config, *storage.ClickHouse) error) error {
	cfg, err := LoadConfig(path, env)
	if err != nil {
		return err
	}
	store, err := storage.NewClickHouse(cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer store.Close()
	return f(cfg, store)
}
