package deploy_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// dockerfileStage is one FROM … stage of the Dockerfile: its base image and
// its instructions with continuation lines joined.
type dockerfileStage struct {
	from         string
	instructions []string
}

func parseDockerfile(t *testing.T) []dockerfileStage {
	t.Helper()
	var stages []dockerfileStage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		if kw, rest, _ := strings.Cut(line, " "); strings.EqualFold(kw, "FROM") {
			stages = append(stages, dockerfileStage{from: strings.TrimSpace(rest)})
			return
		}
		if len(stages) == 0 {
			if kw, _, _ := strings.Cut(line, " "); !strings.EqualFold(kw, "ARG") {
				t.Fatalf("Dockerfile: %q before the first FROM", line)
			}
			return
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, line)
	}
	for _, line := range strings.Split(string(readFile(t, "Dockerfile")), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") && cur.Len() == 0 {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// shellWords splits a command line the way sh does for the simple quoting
// the Dockerfile uses: spaces separate words, "…" and '…' group.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	in, inWord := rune(0), false
	for _, r := range s {
		switch {
		case in != 0 && r == in:
			in = 0
		case in != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			in, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

func TestDockerfile_Stages(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want 2 (builder, runtime)", len(stages))
	}
	if !strings.HasPrefix(stages[0].from, "golang:${GO_VERSION}") && !strings.HasPrefix(stages[0].from, "golang:1.26") {
		t.Errorf("builder stage FROM %q, want golang:1.26", stages[0].from)
	}
	if m := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindSubmatch(readFile(t, "Dockerfile")); m == nil || string(m[1]) != "1.26" {
		t.Errorf("ARG GO_VERSION must default to 1.26 (go.mod's Go), got %q", m)
	}
	if !strings.Contains(stages[1].from, "distroless/static") && stages[1].from != "scratch" {
		t.Errorf("runtime stage FROM %q, want distroless/static or scratch", stages[1].from)
	}
	runtime := strings.Join(stages[1].instructions, "\n")
	for _, want := range []string{
		"USER 65532:65532",
		"VOLUME /var/lib/rowhook",
		"EXPOSE 9788",
		`ENTRYPOINT ["/rowhook"]`,
		`CMD ["run", "--config", "/etc/rowhook/rowhook.yaml"]`,
		"COPY --from=build /out/rowhook /rowhook",
	} {
		if !strings.Contains(runtime, want) {
			t.Errorf("runtime stage lacks %q", want)
		}
	}
}

// dockerBuildArgs returns the arguments of the Dockerfile's `go build`,
// after "go", with ${VERSION} replaced by version and the output path by out.
func dockerBuildArgs(t *testing.T, version, out string) (env []string, args []string) {
	t.Helper()
	for _, ins := range parseDockerfile(t)[0].instructions {
		i := strings.Index(ins, "go build")
		if !strings.HasPrefix(ins, "RUN ") || i < 0 {
			continue
		}
		words := shellWords(strings.ReplaceAll(ins[:i], "RUN ", ""))
		for _, w := range words {
			if strings.Contains(w, "=") && !strings.HasPrefix(w, "--") {
				env = append(env, w)
			}
		}
		args = shellWords(strings.ReplaceAll(ins[i+len("go "):], "${VERSION}", version))
		for j := range args {
			if args[j] == "-o" && j+1 < len(args) {
				args[j+1] = out
			}
		}
		return env, args
	}
	t.Fatal("Dockerfile: no RUN … go build in the builder stage")
	return nil, nil
}

var (
	builtOnce sync.Once
	builtBin  string
	builtErr  string
)

// buildAsDockerfile builds rowhook exactly as the Dockerfile does, once per
// test run, and returns the binary's path.
func buildAsDockerfile(t *testing.T) string {
	t.Helper()
	builtOnce.Do(func() {
		// Not t.TempDir: that is removed when the first test that asked for
		// the binary ends, and others use it after.
		dir, err := os.MkdirTemp("", "rowhook-deploytest-")
		if err != nil {
			builtErr = err.Error()
			return
		}
		bin := filepath.Join(dir, "rowhook")
		env, args := dockerBuildArgs(t, "v9.9.9-deploytest", bin)
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot
		cmd.Env = append(cmd.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			builtErr = "go " + strings.Join(args, " ") + ": " + err.Error() + "\n" + string(out)
			return
		}
		builtBin = bin
	})
	if builtErr != "" {
		t.Fatal(builtErr)
	}
	return builtBin
}

func TestDockerfile_BuildIsStatic(t *testing.T) {
	env, args := dockerBuildArgs(t, "v1", "/out/x")
	if strings.Join(env, " ") != "CGO_ENABLED=0" {
		t.Errorf("go build environment %q, want CGO_ENABLED=0", env)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"build", "-trimpath", "-ldflags", "-s -w -X main.version=v1", "./cmd/rowhook"} {
		if !strings.Contains(joined, want) {
			t.Errorf("go %s lacks %q", joined, want)
		}
	}

	bin := buildAsDockerfile(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("open built binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a PT_INTERP program header: it is dynamically linked and will not run on distroless/static")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("binary imports shared libraries %v (err %v)", libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Error("binary has a symbol table: -ldflags -s was not applied")
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("rowhook version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "v9.9.9-deploytest") {
		t.Errorf("rowhook version printed %q: -X main.version did not take", out)
	}
}
