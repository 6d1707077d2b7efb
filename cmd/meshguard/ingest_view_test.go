package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/meshguard/meshguard/cmd/meshguard/api"
	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// TestIngestViewReadsServeMetrics: the dashboard's ingest view reads the
// metrics serve registers for its consumer (registerConsumer), under
// their names: a consumer that has fetched nothing yet shows as running,
// nothing fetched, no partition.
func TestIngestViewReadsServeMetrics(t *testing.T) {
	kcfg := ingest.DefaultKafkaConfig()
	kcfg.Brokers = []string{"127.0.0.1:1"} // never dialled: the consumer is not run
	c, err := ingest.NewConsumer(kcfg, ingest.DefaultIngestConfig(),
		consumer.FlowsFunc(func(context.Context, []models.Flow) error { return nil }), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	registerConsumer(reg, c)
	cfg := api.DefaultConfig()
	cfg.Listen, cfg.Auth.Mode = "127.0.0.1:0", api.AuthNone
	srv, err := api.New(cfg, api.Deps{Store: storage.NewMemory(1), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/api/v1/ingest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Running            bool       `json:"running"`
		AssignedPartitions *int64     `json:"assigned_partitions"`
		Stalled            bool       `json:"stalled"`
		LastFetch          *time.Time `json:"last_fetch"`
		Partitions         []any      `json:"partitions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !v.Running || v.AssignedPartitions == nil || *v.AssignedPartitions != 0 || v.Stalled || v.LastFetch != nil || len(v.Partitions) != 0 {
		t.Errorf("ingest view %d %+v; want running, 0 partitions, nothing fetched", resp.StatusCode, v)
	}
}
