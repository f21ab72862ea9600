package yamlconf

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: any input gives a config or an error, never a panic, and every
// positioned error points inside the document.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"source: x\nrules:\n  - name: a\n    when: 'row.x > 1'\n",
		"rules: [{name: a, when: '${X:-1}'}]",
		"timeout: ${T}\n",
		"a: &x {b: 1}\nc: *x\n",
		"rules:\n  - name: a\n    wen: 'x'\n",
		"- not a map",
		"source: [x\n",
		"'\t",
		"",
		"webhooks:\n  erp:\n    url: x\n\tmethod: POST\n",
		"rules:\n  - name: a\n    when: x\n   event: B\n",
		"a: &a [1, *a]\n",
		"x: &x {<<: *x}\n",
		"\r\n\t\r",
		aliasBomb(),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		var c testConfig
		_, err := ParseEnv("f.yaml", strings.NewReader(src), &c, env(map[string]string{"X": "v"}))
		if err == nil {
			return
		}
		// YAML breaks lines at \n, \r\n and a lone \r.
		lines := strings.Count(strings.ReplaceAll(src, "\r\n", "\n"), "\n") + strings.Count(strings.ReplaceAll(src, "\r\n", ""), "\r") + 1
		var visit func(error)
		visit = func(e error) {
			if j, ok := e.(interface{ Unwrap() []error }); ok {
				for _, c := range j.Unwrap() {
					visit(c)
				}
				return
			}
			var pe *Error
			if errors.As(e, &pe) && (pe.Pos.Line < 0 || pe.Pos.Line > lines+1) {
				t.Fatalf("error %q points at line %d of a %d-line document", pe, pe.Pos.Line, lines)
			}
		}
		visit(err)
	})
}
