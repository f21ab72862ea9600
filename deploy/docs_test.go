package deploy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var repoPath = regexp.MustCompile("(?:deploy|internal|docs)/[A-Za-z0-9_./-]*[A-Za-z0-9_]")

// TestDocs_PathsExist: every repository path docs/deploy.md and
// deploy/README.md mention exists.
func TestDocs_PathsExist(t *testing.T) {
	for _, doc := range []string{"../docs/deploy.md", "README.md"} {
		text := string(readFile(t, doc))
		seen := map[string]bool{}
		for _, p := range repoPath.FindAllString(text, -1) {
			if seen[p] || strings.Contains(p, "://") {
				continue
			}
			seen[p] = true
			if _, err := os.Stat("../" + p); err != nil {
				t.Errorf("%s mentions %s: %v", doc, p, err)
			}
		}
		if len(seen) < 3 && doc != "README.md" {
			t.Errorf("%s: found only %d repository paths; is the pattern right?", doc, len(seen))
		}
	}
}
