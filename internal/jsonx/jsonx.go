// Package jsonx appends JSON text without encoding/json's reflection, for
// the hot paths (event bodies, the attempt log) that write the same few
// shapes millions of times. The output is byte for byte what json.Marshal
// writes.
package jsonx

import (
	"slices"
	"unicode/utf8"
)

// AppendString quotes s as json.Marshal does (encoding/json's
// appendString with HTML escaping): printable ASCII other than the quote,
// the backslash and <, >, & is copied; control characters, those three,
// U+2028 and U+2029 are escaped and invalid UTF-8 becomes \ufffd.
func AppendString(buf []byte, s string) []byte {
	// Eight bytes at a time, then one at a time, while none needs
	// escaping (most strings: then they are copied in one go).
	i := 0
	for ; i+8 <= len(s); i += 8 {
		b := s[i : i+8]
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		if special(w) {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || !safe[c] {
			return appendEscaped(buf, s, i)
		}
	}
	n := len(buf)
	buf = slices.Grow(buf, len(s)+2)[:n+len(s)+2]
	buf[n] = '"'
	copy(buf[n+1:], s)
	buf[n+1+len(s)] = '"'
	return buf
}

// appendEscaped is AppendString for an s whose first i bytes are safe.
func appendEscaped(buf []byte, s string, i int) []byte {
	buf = append(buf, '"')
	start := 0
	for i < len(s) {
		if b := s[i]; b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '\\', '"':
				buf = append(buf, '\\', b)
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				// Other control characters, and <, >, & (HTML).
				buf = append(buf, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (JSONP).
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

const hex = "0123456789abcdef"

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special reports whether any of the 8 bytes of w is not safe: below 0x20
// or above 0x7f, a quote, a backslash, <, > or &. Each test is exact (the
// "has a byte less than n" and "has a zero byte" bit tricks); " and &
// differ in one bit only (0x22, 0x26), as do < and > (0x3c, 0x3e): with
// that bit set, one test finds either.
func special(w uint64) bool {
	return ((w-ones*0x20)&^w|w)&highs|
		zero((w|ones*0x04)^(ones*'&'))|zero((w|ones*0x02)^(ones*'>'))|zero(w^(ones*'\\')) != 0
}

// zero has the high bit of a byte set if that byte, or one below it, of
// v is zero: non-zero exactly when v has a zero byte.
func zero(v uint64) uint64 { return (v - ones) & ^v & highs }

// safe holds true for the ASCII bytes a JSON string holds as they are
// (encoding/json's htmlSafeSet): not control characters, the quote, the
// backslash, <, > or &.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	t['"'], t['\\'], t['<'], t['>'], t['&'] = false, false, false, false, false
	return t
}()

// AppendHeaders appends h (an http.Header, or any map of string lists) as
// json.Marshal does: keys sorted, a nil list as null.
func AppendHeaders(buf []byte, h map[string][]string) []byte {
	if h == nil {
		return append(buf, "null"...)
	}
	var stack [32]string
	keys := stack[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = AppendString(buf, k)
		buf = append(buf, ':')
		vs := h[k]
		if vs == nil {
			buf = append(buf, "null"...)
			continue
		}
		buf = append(buf, '[')
		for j, v := range vs {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = AppendString(buf, v)
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}
