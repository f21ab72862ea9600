package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rowhook init prints the repository's rowhook.example.yaml, which
// `rowhook check --offline` accepts with no environment variable set.
func TestInit_PrintsTheExampleThatChecks(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"init"}, stdio{out: &out, err: &errb}); err != nil {
		t.Fatalf("rowhook init: %v\n%s", err, errb.String())
	}
	file, err := os.ReadFile("../../rowhook.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), file) {
		t.Fatal("rowhook.example.yaml differs from `rowhook init`'s output: go run ./cmd/rowhook init > rowhook.example.yaml")
	}
	// No environment: every variable the example names is unset.
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.Contains(out.String(), "${"+k) {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	os.Unsetenv("CREDENTIALS_DIRECTORY")
	dir := t.TempDir()
	p := filepath.Join(dir, "rowhook.yaml")
	if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var cout, cerr bytes.Buffer
	if err := run(context.Background(), []string{"check", "--offline", "--config", p}, stdio{out: &cout, err: &cerr}); err != nil {
		t.Fatalf("rowhook check --offline on rowhook init's output: %v\n%s%s", err, cout.String(), cerr.String())
	}
	if err := run(context.Background(), []string{"init", "extra"}, stdio{out: &cout, err: &cerr}); err == nil {
		t.Error("rowhook init extra: want a usage error")
	}
}
