package htmltext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFromTextKeepsLines(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"東京都港区芝公園4-2-8\n電話 03-1234-5678\n\n持ち物: 脚立": "東京都港区芝公園4-2-8<br>電話 03-1234-5678<br><br>持ち物: 脚立",
		"a < b & c > d":    "a &lt; b &amp; c &gt; d",
		"  indented\ttab":  "&nbsp;&nbsp;indented&#9;tab",
		"two  spaces ":     "two&nbsp;&nbsp;spaces&nbsp;",
		"crlf\r\nline\rcr": "crlf<br>line<br>cr",
	} {
		if got := FromText(in); got != want {
			t.Errorf("FromText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "one line", "住所\n電話\n\n持ち物", "  lead and trail  ", "a\t\tb", "<script>alert(1)</script>", "&amp; literally", "x \n y"} {
		if got := ToText(FromText(s)); got != strings.TrimRight(NormalizeNewlines(s), "\n") {
			t.Errorf("round trip of %q gave %q", s, got)
		}
	}
}

// TestToTextReadsOutlooksDocument: Exchange answers an HTML body as a whole
// document (api-reference/v1.0/api/event-get.md shows the shape); what a
// user writes in Outlook uses paragraphs and divs.
func TestToTextReadsOutlooksDocument(t *testing.T) {
	t.Parallel()
	doc := "<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n<style>p{margin:0}</style>\r\n</head>\r\n<body>\r\n" +
		FromText("住所: 港区\n  電話: 03") + "\r\n</body>\r\n</html>\r\n"
	if got := ToText(doc); got != "住所: 港区\n  電話: 03" {
		t.Errorf("our body inside Exchange's document: %q", got)
	}
	user := "<html><body><div>Hello&nbsp;there,</div><p>second\r\n   paragraph</p><ul><li>one</li><li>two &amp; three</li></ul><script>x()</script></body></html>"
	if got := ToText(user); got != "Hello there,\nsecond paragraph\none\ntwo & three" {
		t.Errorf("a user's HTML: %q", got)
	}
}

// FuzzRoundTrip: ToText never panics on any input, and reads back exactly
// what FromText wrote for any valid text.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"住所\n電話", "  a  b  ", "<b>x</b>", "a\r\nb", "\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = ToText(s)
		if !utf8.ValidString(s) || strings.ContainsRune(s, '\u00a0') || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f }) {
			return
		}
		want := strings.TrimRight(NormalizeNewlines(s), "\n")
		if got := ToText(FromText(s)); got != want {
			t.Fatalf("%q -> %q -> %q", s, FromText(s), got)
		}
	})
}
