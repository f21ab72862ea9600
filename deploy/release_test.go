package deploy_test

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// `make release` builds static Linux binaries stamped with VERSION and
// their SHA256SUMS: run it for the host's architecture (the other is the
// same command with another GOARCH) and check what it produced.
func TestMakeRelease(t *testing.T) {
	mk := string(readFile(t, "../Makefile"))
	for _, want := range []string{"release:", "RELEASE_ARCHS ?= amd64 arm64", "CGO_ENABLED=0 GOOS=linux", "-trimpath", "-s -w -X main.version=$(VERSION)", "SHA256SUMS"} {
		if !strings.Contains(mk, want) {
			t.Errorf("Makefile lacks %q", want)
		}
	}
	if runtime.GOOS != "linux" {
		t.Fatalf("the release binaries are Linux ones; this test runs them (GOOS %s)", runtime.GOOS)
	}
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Fatalf("make not installed: %v", err)
	}
	dist := t.TempDir()
	const version = "v0.0.0-releasetest"
	cmd := exec.Command(makeBin, "-C", repoRoot, "release", "VERSION="+version, "RELEASE_ARCHS="+runtime.GOARCH, "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	name := "rowhook-" + version + "-linux-" + runtime.GOARCH
	bin := filepath.Join(dist, name)
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "rowhook "+version+" ") {
		t.Errorf("%s --version: %q (err %v), want rowhook %s (go…)", name, out, err, version)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("release binary is dynamically linked")
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	sums, err := os.Open(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer sums.Close()
	found := false
	for sc := bufio.NewScanner(sums); sc.Scan(); {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[1] == name {
			found = true
			if fields[0] != hex.EncodeToString(sum[:]) {
				t.Errorf("SHA256SUMS has %s for %s, the file's is %x", fields[0], name, sum)
			}
		}
	}
	if !found {
		t.Errorf("SHA256SUMS has no line for %s", name)
	}
}
