package redact

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// secrets are what no redacted form may show.
var secrets = []string{"pa55word", "K3Y", "t0ken"}

func checkNoSecret(t *testing.T, in, got string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(got, s) {
			t.Errorf("%q → %q keeps %q", in, got, s)
		}
	}
}

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://erp.example/hooks/deal", "https://erp.example/hooks/deal"},
		{"https://bob:pa55word@erp.example/x", "https://erp.example/x"},
		{"https://bob@erp.example/x", "https://erp.example/x"},
		{"https://erp.example/x?api_key=K3Y&mode=full", "https://erp.example/x?api_key=redacted&mode=redacted"},
		{"https://erp.example/x?mode=full&api_key=K3Y", "https://erp.example/x?mode=redacted&api_key=redacted"},
		{"https://erp.example/svc?wsdl", "https://erp.example/svc?wsdl"},
		{"https://erp.example/svc?WSDL&token=t0ken", "https://erp.example/svc?WSDL&token=redacted"},
		{"https://erp.example/x?a=&b=1", "https://erp.example/x?a=&b=redacted"},
		{"https://erp.example/x#frag", "https://erp.example/x"},
		{"https://erp.example/a%20b?x=1", "https://erp.example/a%20b?x=redacted"},
		{"ftp://u:pa55word@h/x", "ftp://h/x"},
		{"/relative/path?token=t0ken", "/relative/path?token=redacted"},
		// Does not parse: cut before the query, without credentials.
		{"https://bob:pa55word@erp.example:bad port/x?key=K3Y", "https://erp.example:bad port/x"},
		{"https://erp.example/\x7f/{{ .row.id }}?key=K3Y#x", "https://erp.example/\x7f/{{ .row.id }}"},
		{"https://erp.example:bad port/x@y?key=K3Y", "https://erp.example:bad port/x@y"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := URL(tt.in)
			if got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			checkNoSecret(t, tt.in, got)
		})
	}
}

func TestURLParams(t *testing.T) {
	secret := func(name string) bool { return name == "apikey" || name == "api key" }
	tests := []struct{ in, want string }{
		{"https://user:pa55word@erp/x?apikey=K3Y&id=7", "https://erp/x?apikey=redacted&id=7"},
		{"https://erp/x?id=7&api%20key=K3Y&q=a%2Fb", "https://erp/x?id=7&api%20key=redacted&q=a%2Fb"},
		{"https://erp/x?id=7", "https://erp/x?id=7"},
	}
	for _, tt := range tests {
		got := URLParams(tt.in, secret)
		if got != tt.want {
			t.Errorf("URLParams(%q) = %q, want %q", tt.in, got, tt.want)
		}
		checkNoSecret(t, tt.in, got)
	}
}

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`Get "https://bob:pa55word@erp/x?token=t0ken": dial tcp: refused`, `Get "https://erp/x?token=redacted": dial tcp: refused`},
		{"GET https://erp/x?key=K3Y: HTTP 500", "GET https://erp/x?key=redacted: HTTP 500"},
		{"see (https://erp/x?key=K3Y).", "see (https://erp/x?key=redacted)."},
		{"two: http://a/?key=K3Y and mysql://u:pa55word@db/", "two: http://a/?key=redacted and mysql://db/"},
		{"no url here", "no url here"},
	}
	for _, tt := range tests {
		got := Text(tt.in)
		if got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
		checkNoSecret(t, tt.in, got)
	}
}

func TestError(t *testing.T) {
	if Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
	plain := errors.New("no url")
	if Error(plain) != plain {
		t.Error("an error without a URL is not returned as it is")
	}
	err := fmt.Errorf("fetch https://erp/x?token=t0ken: %w", context.DeadlineExceeded)
	got := Error(err)
	if !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("errors.Is lost the cause: %v", got)
	}
	if got.Error() != "fetch https://erp/x?token=redacted: context deadline exceeded" {
		t.Errorf("Error() = %q", got)
	}
}
