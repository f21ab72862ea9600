// Package sqltext reads SQL text the way MariaDB's parser delimits it:
// quoted strings and identifiers ('…', "…", `…`, with backslash escapes),
// line comments (-- and #), and the code between them. It is the one place
// that knows where a ; or a :name is code and where it is data: scripts
// are split into statements with Split, lookup queries are checked and
// their placeholders found with Scan.
package sqltext

import (
	"iter"
	"strings"
)

// Kind is what a Segment of SQL text is.
type Kind int

// The segment kinds.
const (
	// Code is SQL outside quotes and comments.
	Code Kind = iota
	// Quoted is a quoted string or identifier, quotes included.
	Quoted
	// Comment is a line comment (-- or #) up to, not including, its newline.
	Comment
)

// Segment is a run of SQL text of one kind.
type Segment struct {
	Kind Kind
	// Text is the run; Start is its offset in the scanned text.
	Text  string
	Start int
	// Unterminated marks a Quoted run that the text ends inside.
	Unterminated bool
}

// Scan yields the segments of s in order; their texts put together are s.
func Scan(s string) iter.Seq[Segment] {
	return func(yield func(Segment) bool) {
		start := 0 // of the current code run
		flush := func(end int) bool {
			if end > start {
				return yield(Segment{Kind: Code, Text: s[start:end], Start: start})
			}
			return true
		}
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\'' || c == '"' || c == '`':
				if !flush(i) {
					return
				}
				j, closed := i+1, false
				for ; j < len(s); j++ {
					if s[j] == '\\' && j+1 < len(s) {
						j++
					} else if s[j] == c {
						closed = true
						j++
						break
					}
				}
				if !yield(Segment{Kind: Quoted, Text: s[i:j], Start: i, Unterminated: !closed}) {
					return
				}
				i, start = j-1, j
			case c == '#' || c == '-' && strings.HasPrefix(s[i:], "-- "):
				if !flush(i) {
					return
				}
				j := strings.IndexByte(s[i:], '\n')
				if j < 0 {
					j = len(s)
				} else {
					j += i
				}
				if !yield(Segment{Kind: Comment, Text: s[i:j], Start: i}) {
					return
				}
				i, start = j-1, j
			}
		}
		flush(len(s))
	}
}

// Split splits a script into statements on the ; outside quotes and
// comments, with comments removed and each statement trimmed; empty
// statements are left out.
func Split(script string) []string {
	var out []string
	var cur strings.Builder
	end := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for seg := range Scan(script) {
		switch seg.Kind {
		case Comment:
		case Quoted:
			cur.WriteString(seg.Text)
		case Code:
			text := seg.Text
			for {
				i := strings.IndexByte(text, ';')
				if i < 0 {
					cur.WriteString(text)
					break
				}
				cur.WriteString(text[:i])
				end()
				text = text[i+1:]
			}
		}
	}
	end()
	return out
}
