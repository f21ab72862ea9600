package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/internal/pipeline"
)

// The configuration example in README.md is valid for this code: every key
// exists and validates (offline).
func TestReadme_ConfigExampleIsValid(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "### Configuration")
	if i < 0 {
		t.Fatal("README has no Configuration section")
	}
	rest := text[i:]
	start := strings.Index(rest, "```yaml\n")
	end := strings.Index(rest[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no yaml block in the Configuration section")
	}
	yaml := rest[start+8 : start+8+end]
	for _, v := range []string{"SOURCE_PASSWORD", "ERP_TOKEN", "ERP_WHSEC", "CRM_PASSWORD", "ROWHOOK_ADMIN_TOKEN"} {
		t.Setenv(v, "x")
	}
	t.Setenv("ERP_WHSEC", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	p := filepath.Join(t.TempDir(), "rowhook.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pipeline.Load(context.Background(), p); err != nil {
		t.Fatalf("README's config example does not validate:\n%v\n%s", err, yaml)
	}
}
