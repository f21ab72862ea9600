package yamlconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ${file:PATH} reads Docker/Kubernetes secrets and systemd credentials:
// the content, one trailing newline removed, kept as data (YAML syntax in
// it changes nothing), the path itself expanded first.
func TestParse_ExpandsSecretFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("a#b: c ${NOPE}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "port"), []byte("3307"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := "source: 'mysql://u:${file:${CREDENTIALS_DIRECTORY}/pw}@h/$${file:x}'\nport: ${file:" + dir + "/port}\n"
	var c testConfig
	_, err := ParseEnv("c.yaml", strings.NewReader(src), &c, env(map[string]string{"CREDENTIALS_DIRECTORY": dir}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "mysql://u:a#b: c ${NOPE}@h/${file:x}"; c.Source != want || c.Port != 3307 {
		t.Fatalf("got source %q port %d, want %q 3307", c.Source, c.Port, want)
	}
}

// A secret that cannot be read is an error naming the config's line and
// the secret's path, and never any of a secret's content.
func TestParse_SecretFileErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte("s3cr3t"+strings.Repeat("x", MaxSecretSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, value, want string }{
		{"missing file", "${file:" + dir + "/nope}", "c.yaml:2:9: source: secret file " + dir + "/nope: no such file or directory"},
		{"directory", "${file:" + dir + "}", "secret file " + dir + ": is a directory"},
		{"too big", "${file:" + big + "}", "secret file " + big + ": larger than 64 kB"},
		{"empty", "${file:" + empty + "}", "secret file " + empty + " is empty"},
		{"unclosed", "${file:" + big, "c.yaml:2:9: source: ${file: without its closing }"},
		{"no path", "${file:}", "names no file"},
		{"unset var in path", "${file:${CREDS}/pw}", "in ${file:${CREDS}/pw}: environment variable CREDS is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c testConfig
			_, err := ParseEnv("c.yaml", strings.NewReader("port: 1\nsource: '"+tt.value+"'\n"), &c, env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error reveals the secret: %v", err)
			}
		})
	}
}
