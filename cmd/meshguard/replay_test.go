package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
)

// A recorded hour with a credential-stuffing attack at its end replays to
// that detection, and to nothing else.
func TestReplayFilesRaisesWhatLiveWould(t *testing.T) {
	start := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	attacks, err := scenario.Schedule([]models.DetectionKind{models.CredentialStuffing}, start.Add(20*time.Minute), time.Minute, time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := scenario.NewWith(scenario.RealisticMesh(), start, 3, scenario.Options{Scale: 0.25, Attacks: attacks})
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	var m plog.JSONMarshaler
	for gen.Now().Before(start.Add(25 * time.Minute)) {
		b, err := m.MarshalLogs(gen.Next(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		file.Write(b)
		file.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "logs.jsonl")
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "meshguard.yaml")
	os.WriteFile(cfgPath, []byte("detect:\n  learning_period: 15m\n"), 0o600)
	var out, errOut bytes.Buffer
	if err := runReplay(context.Background(), replayOptions{config: cfgPath, quiet: true}, []string{path}, &out, &errOut); err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "1 detections: credential_stuffing 1") {
		t.Fatalf("replay output:\n%s", out.String())
	}
}
