// Package jsonx appends JSON text without encoding/json's reflection, for
// the hot paths (event bodies, the attempt log) that write the same few
// shapes millions of times. The output is byte for byte what json.Marshal
// writes.
package jsonx

import (
	"encoding/json"
	"slices"
)

// AppendString quotes s as encoding/json does: printable ASCII other than
// the quote, the backslash and <, >, & (which json.Marshal escapes for
// HTML) is copied; any other string takes json.Marshal's path.
func AppendString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always encodes
			return append(buf, j...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

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
