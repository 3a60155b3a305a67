// Package htmltext turns the host's plain-text notes into the HTML an
// event body is sent as, and an HTML body read back from Outlook into
// plain text, so job notes keep their lines in Outlook and the host gets
// text without tags.
//
// Outlook on the web shows a text body as one run of text, so bodies go out
// as HTML: escaped, each line break a <br>, and the spaces HTML would
// collapse (leading, trailing, or repeated) as &nbsp;, tabs as &#9;.
// Reading back is lossless for what FromText wrote: ToText(FromText(s))
// is s with its line breaks normalised to "\n" (and a no-break space read
// back as a space). For other HTML (what a user
// writes in Outlook, inside the document Exchange wraps every body in), it
// reads as a browser shows it: head, style and script dropped, whitespace
// collapsed, <br> and the end of each block (p, div, li, tr, headings) a
// line break, entities decoded.
package htmltext

import (
	"html"
	"io"
	"strings"

	xhtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// FromText is s as an HTML fragment.
func FromText(s string) string {
	s = NormalizeNewlines(s)
	lines := strings.Split(s, "\n")
	var b strings.Builder
	for i, line := range lines {
		if i > 0 {
			b.WriteString("<br>")
		}
		b.WriteString(encodeLine(line))
	}
	return b.String()
}

// NormalizeNewlines turns CRLF and lone CR into LF.
func NormalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// encodeLine escapes one line; a space survives HTML's whitespace
// collapsing only between two visible characters, so every other space is
// &nbsp; and every tab &#9;.
func encodeLine(line string) string {
	rs := []rune(line)
	var b strings.Builder
	for i, r := range rs {
		switch r {
		case ' ':
			alone := i > 0 && i < len(rs)-1 && !isSpace(rs[i-1]) && !isSpace(rs[i+1])
			if alone {
				b.WriteByte(' ')
			} else {
				b.WriteString("&nbsp;")
			}
		case '\t':
			b.WriteString("&#9;")
		default:
			b.WriteString(html.EscapeString(string(r)))
		}
	}
	return b.String()
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' }

var blocks = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Li: true, atom.Tr: true, atom.H1: true, atom.H2: true, atom.H3: true,
	atom.H4: true, atom.H5: true, atom.H6: true, atom.Table: true, atom.Ul: true, atom.Ol: true, atom.Blockquote: true, atom.Pre: true,
}

var skipped = map[atom.Atom]bool{atom.Head: true, atom.Style: true, atom.Script: true, atom.Title: true}

// ToText reads an HTML body as the plain text a reader sees.
func ToText(s string) string {
	z := xhtml.NewTokenizer(strings.NewReader(s))
	var out strings.Builder
	var line strings.Builder // the current line, raw whitespace collapsed
	skip := 0
	flush := func(newline bool) {
		out.WriteString(decodeLine(line.String()))
		line.Reset()
		if newline {
			out.WriteByte('\n')
		}
	}
	atLineStart := func() bool { return line.Len() == 0 }
	for {
		tt := z.Next()
		switch tt {
		case xhtml.ErrorToken:
			if z.Err() != io.EOF {
				return ""
			}
			flush(false)
			return strings.TrimRight(out.String(), "\n")
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch {
			case skipped[a] && tt == xhtml.StartTagToken:
				skip++
			case a == atom.Br && skip == 0:
				flush(true)
			case blocks[a] && skip == 0 && !atLineStart():
				flush(true)
			}
		case xhtml.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch {
			case skipped[a]:
				skip = max(0, skip-1)
			case blocks[a] && skip == 0 && !atLineStart():
				flush(true)
			}
		case xhtml.TextToken:
			if skip == 0 {
				line.WriteString(collapse(string(z.Raw())))
			}
		}
	}
}

// collapse turns each run of raw HTML whitespace into one space.
func collapse(raw string) string {
	var b strings.Builder
	space := false
	for _, r := range raw {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// decodeLine drops the collapsible space at the line's edges, then decodes
// entities (&nbsp; back to a space: FromText made it from one).
func decodeLine(raw string) string {
	raw = strings.Trim(raw, " ")
	s := html.UnescapeString(raw)
	return strings.ReplaceAll(s, "\u00a0", " ")
}
