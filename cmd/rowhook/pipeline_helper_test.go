package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/rowhook/rowhook/internal/pipeline"
)

// startTestPipeline loads the config at cfgPath, starts the pipeline with a
// captured text log, waits until it is ready and stops it (failing the test
// on a pipeline error) at cleanup.
func startTestPipeline(t *testing.T, cfgPath string) (*pipeline.Pipeline, *syncWriter) {
	t.Helper()
	cfg, _, err := pipeline.Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := startPipeline(ctx, cfg, filepath.Dir(cfgPath), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := p.Wait(); err != nil {
			t.Errorf("pipeline: %v", err)
		}
	})
	waitReady(t, p.Addr())
	return p, logs
}

// startPipeline opens the pipeline `rowhook run` runs and starts it in
// the background until ctx ends; Wait says why it stopped.
func startPipeline(ctx context.Context, cfg *pipeline.Config, dir string, logger *slog.Logger) (*pipeline.Pipeline, error) {
	p, err := pipeline.Open(ctx, cfg, pipeline.Options{Dir: dir, Logger: logger, Version: version})
	if err != nil {
		return nil, err
	}
	p.Start(ctx)
	return p, nil
}
