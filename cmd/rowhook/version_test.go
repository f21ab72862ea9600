package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// `rowhook --version` prints what `rowhook version` prints.
func TestVersionFlag(t *testing.T) {
	var a, b bytes.Buffer
	if err := run(context.Background(), []string{"version"}, stdio{out: &a, err: &a}); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"--version"}, stdio{out: &b, err: &b}); err != nil {
		t.Fatalf("rowhook --version: %v", err)
	}
	if a.String() != b.String() || !strings.HasPrefix(a.String(), "rowhook "+version+" ") {
		t.Errorf("rowhook version printed %q, --version %q", a.String(), b.String())
	}
}
