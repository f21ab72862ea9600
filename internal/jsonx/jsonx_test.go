package jsonx

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"
	"unicode/utf8"
)

func TestAppendString_AsMarshal(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "<tag>&", "tab\tnew\nline\x01", "héllo", "\u2028", "bad\xffutf8", "emoji 🎉",
		"\b\f\r\x00\x1f\x7f", "a\u2029b", "\xe2\x80", "trailing \xc3", "Zürich <b>&amp;</b> \"Müller\"\n"} {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestAppendHeaders_AsMarshal(t *testing.T) {
	for _, h := range []map[string][]string{
		nil,
		{},
		{"Content-Type": {"application/json"}},
		{"X-B": {"2", "<3>"}, "X-A": {"1"}, "X-Nil": nil, "X-Empty": {}, "Ünï": {"\"q\""}},
	} {
		want, _ := json.Marshal(h)
		if got := AppendHeaders(nil, h); string(got) != string(want) {
			t.Errorf("AppendHeaders(%v) = %s, want %s", h, got, want)
		}
	}
}

// TestSpecial: the eight-byte test flags a word exactly when one of its
// bytes, at any place, is not copied as it is.
func TestSpecial(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c >= utf8.RuneSelf || !safe[c]
		for at := 0; at < 8; at++ {
			for _, fill := range []byte{'a', ' ', '~', 0x7f} {
				w := [8]byte{fill, fill, fill, fill, fill, fill, fill, fill}
				w[at] = byte(c)
				if got := special(binary.LittleEndian.Uint64(w[:])); got != want {
					t.Fatalf("special(%q) = %v, want %v", w, got, want)
				}
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"plain", "é\u2028\x00<&>\"\\", "\xff\xfe", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("AppendString(%q) = %s, want x%s", s, got, want)
		}
	})
}

func FuzzAppendHeaders(f *testing.F) {
	f.Add("Content-Type", "application/json", "x")
	f.Add("<", "\x00\xff", "\u2028")
	f.Fuzz(func(t *testing.T, k, v1, v2 string) {
		h := map[string][]string{k: {v1, v2}, k + "2": {v2}}
		want, _ := json.Marshal(h)
		if got := AppendHeaders(nil, h); string(got) != string(want) {
			t.Fatalf("AppendHeaders(%q) = %s, want %s", h, got, want)
		}
	})
}

// BenchmarkAppendString: a body's usual string (ASCII) and one with
// accents and a newline, each into a reused buffer.
func BenchmarkAppendString(b *testing.B) {
	for _, s := range []string{"Deal 1042 - 500 seats", "Société Générale, Zürich\nnotes"} {
		b.Run(fmt.Sprintf("len=%d", len(s)), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = AppendString(buf[:0], s)
			}
		})
	}
}

func BenchmarkAppendHeaders(b *testing.B) {
	h := map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"rowhook/1"}, "Webhook-Id": {"msg_abcdefghijklmnopqrstuvwx"},
		"Webhook-Timestamp": {"1763900000"}, "Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}}
	b.Run("jsonx", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = AppendHeaders(buf[:0], h)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(h)
		}
	})
}
