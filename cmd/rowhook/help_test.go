package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// helpCommands is every command line whose --help is checked: each
// registered command, and the subcommands of those that have them.
func helpCommands() [][]string {
	var cmds [][]string
	for name := range commands {
		cmds = append(cmds, []string{name})
	}
	cmds = append(cmds, []string{"deliveries", "list"}, []string{"deliveries", "show"},
		[]string{"soap", "operations"}, []string{"soap", "params"})
	slices.SortFunc(cmds, func(a, b []string) int { return strings.Compare(strings.Join(a, " "), strings.Join(b, " ")) })
	return cmds
}

// Every command's --help exits 0, lists every flag the command defines
// (each flag set it parses, seen through onFlagSet) and shows an example.
func TestCommands_Help(t *testing.T) {
	if len(commands) < 15 {
		t.Fatalf("%d commands registered, want every one of them (15 or more)", len(commands))
	}
	for _, cmd := range helpCommands() {
		t.Run(strings.Join(cmd, "_"), func(t *testing.T) {
			var sets []*flag.FlagSet
			onFlagSet = func(fs *flag.FlagSet) { sets = append(sets, fs) }
			defer func() { onFlagSet = nil }()
			out, errOut, code := runCommand(t, append(slices.Clone(cmd), "--help")...)
			text := out + errOut
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, text)
			}
			if len(sets) == 0 {
				t.Fatalf("parsed no flag set: its flags cannot be checked (use parseFlags)\n%s", text)
			}
			for _, fs := range sets {
				fs.VisitAll(func(f *flag.Flag) {
					if !regexp.MustCompile(`(^|\s)-` + regexp.QuoteMeta(f.Name) + `\s`).MatchString(text) {
						t.Errorf("--help does not list flag -%s (of %s)", f.Name, fs.Name())
					}
				})
			}
			if !strings.Contains(text, "\nExample:\n  rowhook ") {
				t.Errorf("--help has no Example:\n%s", text)
			}
			if strings.Count(text, "Usage:") < 1 {
				t.Errorf("--help has no Usage line:\n%s", text)
			}
			// `rowhook help CMD` says the same.
			if len(cmd) == 1 {
				hout, herr, hcode := runCommand(t, "help", cmd[0])
				if hcode != 0 || hout+herr != text {
					t.Errorf("rowhook help %s (exit %d) differs from --help:\n%s", cmd[0], hcode, hout+herr)
				}
			}
		})
	}
}

// Every message a command prints ends with a newline: the help, usage
// errors, a flag it does not know, and what the offline commands print.
func TestCommands_OutputEndsWithNewline(t *testing.T) {
	dir := t.TempDir()
	example := filepath.Join(dir, "rowhook.yaml")
	if err := os.WriteFile(example, []byte(initOutput(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	runs := [][]string{
		{}, {"--help"}, {"no-such-command"}, {"--version"}, {"init"}, {"version"},
		{"check", "--list"}, {"check", "--offline", "--config", example},
		{"check", "--config", filepath.Join(dir, "missing.yaml")},
		{"test", "--config", example}, {"test", "--config", example, filepath.Join(dir, "missing_test.yaml")},
		{"deliveries"}, {"deliveries", "list"}, {"deliveries", "nope"}, {"soap"}, {"soap", "params", "--wsdl", "x.wsdl"},
		{"redeliver", "--config", example}, {"position"}, {"replay", "--config", example}, {"studio"}, {"tail"},
	}
	for _, cmd := range helpCommands() {
		runs = append(runs, append(slices.Clone(cmd), "--help"), append(slices.Clone(cmd), "--no-such-flag"))
	}
	for _, args := range runs {
		out, errOut, code := runCommand(t, args...)
		if out == "" && errOut == "" {
			t.Errorf("rowhook %s (exit %d) printed nothing", strings.Join(args, " "), code)
		}
		for name, s := range map[string]string{"stdout": out, "stderr": errOut} {
			if s != "" && !strings.HasSuffix(s, "\n") {
				t.Errorf("rowhook %s (exit %d): %s does not end with a newline: %q", strings.Join(args, " "), code, name, s[max(0, len(s)-80):])
			}
		}
	}
}

func initOutput(t *testing.T) string {
	out, _, code := runCommand(t, "init")
	if code != 0 {
		t.Fatalf("rowhook init: exit %d", code)
	}
	return out
}
