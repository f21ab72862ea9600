package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

// erroneousRules is a config of n rules, each with one error: a condition
// naming an unknown variable.
func erroneousRules(n int) string {
	var b strings.Builder
	b.WriteString("source:\n  dsn: mysql://u:p@127.0.0.1:1/\nwebhooks:\n  erp:\n    url: https://erp.example/hook\nrules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: r%d\n    table: crm.t\n    event: RowChanged\n    when: row.amount > 1 && amout > 2\n    webhooks: [erp]\n", i)
	}
	return b.String()
}

// BenchmarkCheck_ErroneousRules is rowhook check --offline on 8,000 rules
// that each have an error; the time grows in proportion to the rules.
func BenchmarkCheck_ErroneousRules(b *testing.B) {
	for _, n := range []int{2000, 8000, 16000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			path := writeTemp(b, "rowhook.yaml", erroneousRules(n))
			for b.Loop() {
				if _, _, code := runCommand(b, "check", "--offline", "--config", path); code != 1 {
					b.Fatalf("exit %d", code)
				}
			}
		})
	}
}

// rowhook check reports every one of 8,000 errors, each at its place, in
// the order of the file.
func TestCheck_ManyErrors(t *testing.T) {
	const n = 8000
	path := writeTemp(t, "rowhook.yaml", erroneousRules(n))
	_, errOut, code := runCommand(t, "check", "--offline", "--config", path)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != n {
		t.Fatalf("%d error lines, want %d; first: %s", len(lines), n, lines[0])
	}
	for i, l := range lines {
		want := fmt.Sprintf("rowhook: %s:%d:29: rules[%d].when: unknown name amout", path, 10+5*i, i)
		if !strings.HasPrefix(l, want) {
			t.Fatalf("line %d: %q, want prefix %q", i, l, want)
		}
	}
}

// The alias bomb (10 levels of 10 aliases, about 600 bytes) is
// refused at the alias that crosses the bound; aliases used as intended
// are fine.
func TestCheck_AliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(checkConfig)
	b.WriteString("x0: &x0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x%d: &x%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*x%d,", i-1), 10), ","))
	}
	path := writeTemp(t, "rowhook.yaml", b.String())
	_, errOut, code := runCommand(t, "check", "--offline", "--config", path)
	lines := strings.Count(checkConfig, "\n")
	want := fmt.Sprintf("rowhook: %s:%d:38: aliases expand to more than %d nodes here", path, lines+4, yamlconf.MaxAliasNodes)
	if code != 1 || !strings.HasPrefix(errOut, want) {
		t.Fatalf("exit %d, stderr %q, want prefix %q", code, errOut, want)
	}

	reuse := strings.Replace(checkConfig, "webhooks:\n  erp:\n    url: https://erp.example/hook\n",
		"webhooks:\n  erp: &hook\n    url: https://erp.example/hook\n    headers: {X-App: rowhook}\n  erp2: *hook\n  erp3:\n    <<: *hook\n    method: PUT\n", 1)
	path = writeTemp(t, "rowhook.yaml", reuse)
	if out, errOut, code := runCommand(t, "check", "--offline", "--config", path); code != 0 {
		t.Fatalf("aliases reused: exit %d: %s%s", code, out, errOut)
	}
}

func TestCheck_ConfigTooLarge(t *testing.T) {
	path := writeTemp(t, "rowhook.yaml", checkConfig+strings.Repeat("# padding\n", yamlconf.MaxSize/10))
	_, errOut, code := runCommand(t, "check", "--offline", "--config", path)
	if want := "rowhook: " + path + ": larger than 8 MB, the limit for a config file\n"; code != 1 || errOut != want {
		t.Fatalf("exit %d, stderr %q, want %q", code, errOut, want)
	}
}

// YAML mistakes are reported on the line that has them; unknown keys by
// their YAML path with the nearest known key, never a Go type.
func TestCheck_ErrorLines(t *testing.T) {
	base := `source:
  dsn: mysql://u:p@127.0.0.1:1/
webhooks:
  erp:
    url: https://erp.example/hook
    method: POST
rules:
  - name: a
    table: crm.t
    event: RowChanged
  - name: b
    table: crm.t
    event: RowChanged
`
	tests := []struct{ name, old, new, want string }{
		{"dedented rule key", "    event: RowChanged\n  - name: b\n    table: crm.t\n    event: RowChanged", "    event: RowChanged\n  - name: b\n    table: crm.t\n   event: RowChanged",
			"13:4: did not find expected '-' indicator"},
		{"3-space indent", "    method: POST", "   method: POST", "6:4: did not find expected key"},
		{"tab", "    method: POST", "\tmethod: POST", "6:1: tab character at 6:1; YAML indents with spaces"},
		{"unknown key", "    method: POST", "    methd: POST", "6:5: webhooks.erp.methd: unknown key (did you mean method?)"},
		{"unknown rule key", "  - name: b\n    table: crm.t", "  - name: b\n    tabel: crm.t", "12:5: rules[1].tabel: unknown key (did you mean table?)"},
		{"unknown section", "rules:", "rulez:", "7:1: rulez: unknown key (did you mean rules?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(base, tt.old, tt.new, 1)
			if src == base {
				t.Fatal("replacement did not apply")
			}
			path := writeTemp(t, "rowhook.yaml", src)
			_, errOut, code := runCommand(t, "check", "--offline", "--config", path)
			if want := "rowhook: " + path + ":" + tt.want; code != 1 || !strings.HasPrefix(errOut, want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant prefix %s", code, errOut, want)
			}
			if strings.Contains(errOut, "dispatch.") || strings.Contains(errOut, "rules.") || strings.Contains(errOut, "Config") {
				t.Errorf("error names a Go type: %s", errOut)
			}
		})
	}
}

// Every command that reads a config answers SIGTERM and SIGINT while
// reading it, here from a pipe that never ends (--config <(generator)):
// it exits with status 1 saying it was interrupted. So does rowhook test
// reading its test file.
func TestCommands_AnswerSignalsWhileLoading(t *testing.T) {
	bin := buildRowhookBinary(t, false)
	dir := t.TempDir()
	const config = "CONFIG" // replaced by the pipe
	rulesOnly := writeTemp(t, "rules.yaml", "rules:\n  - name: a\n    table: crm.t\n    event: RowChanged\n")
	tests := []struct {
		args []string
		sig  syscall.Signal
		// pipeIsTests: the pipe is the rule test file, not the config.
		pipeIsTests bool
	}{
		{[]string{"check", "--offline", "--config", config}, syscall.SIGTERM, false},
		{[]string{"check", "--config", config}, syscall.SIGINT, false},
		{[]string{"run", "--config", config}, syscall.SIGTERM, false},
		{[]string{"test", "--config", config, filepath.Join(dir, "tests.yaml")}, syscall.SIGTERM, false},
		{[]string{"test", "--config", rulesOnly, config}, syscall.SIGTERM, true},
		{[]string{"replay", "--config", config, "--binlog", filepath.Join(dir, "mysql-bin.000001")}, syscall.SIGTERM, false},
		{[]string{"position", "--config", config}, syscall.SIGTERM, false},
		{[]string{"tail", "--config", config}, syscall.SIGINT, false},
		{[]string{"deliveries", "list", "--config", config}, syscall.SIGTERM, false},
		{[]string{"redeliver", "--config", config, "--status", "failed"}, syscall.SIGTERM, false},
	}
	for i, tt := range tests {
		name := tt.args[0] + " " + tt.sig.String()
		if tt.pipeIsTests {
			name = tt.args[0] + " (tests from a pipe) " + tt.sig.String()
		}
		t.Run(name, func(t *testing.T) {
			fifo := filepath.Join(dir, fmt.Sprintf("rowhook-%d.yaml", i))
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			args := append([]string(nil), tt.args...)
			for j := range args {
				if args[j] == config {
					args[j] = fifo
				}
			}
			var stderr strings.Builder
			cmd := exec.Command(bin, args...)
			cmd.Stderr = &stderr
			// The write end opens once rowhook opens the read end, that is
			// once it is reading its config, its signal handler installed.
			opened := make(chan *os.File, 1)
			go func() {
				w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err != nil {
					t.Error(err)
				}
				opened <- w
			}()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case w := <-opened:
				defer w.Close()
				// A little and then nothing: rowhook waits for the rest.
				if _, err := w.WriteString("source:\n  dsn: mysql://u:p@127.0.0.1:1/\n"); err != nil {
					t.Fatal(err)
				}
			case err := <-exited:
				t.Fatalf("exited before reading its config: %v: %s", err, stderr.String())
			}
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				what := "config"
				if tt.pipeIsTests {
					what = fifo
				}
				if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "rowhook: "+what+": interrupted: ") {
					t.Fatalf("exit %d (%v), stderr: %s", code, err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("still running 10 s after %v; stderr: %s", tt.sig, stderr.String())
			}
		})
	}
}
