package reliability

import "testing"

func TestReplace(t *testing.T) {
	doc := "# title\n\nintro\n"
	a := "<!-- begin a: generated, do not edit -->\nA1\n<!-- end a -->\n"
	doc = Replace(doc, "a", a)
	if doc != "# title\n\nintro\n\n"+a {
		t.Fatalf("append: %q", doc)
	}
	b := "<!-- begin b: generated, do not edit -->\nB\n<!-- end b -->\n"
	doc = Replace(doc, "b", b)
	a2 := "<!-- begin a: generated, do not edit -->\nA2\n<!-- end a -->\n"
	doc = Replace(doc, "a", a2)
	if doc != "# title\n\nintro\n\n"+a2+"\n"+b {
		t.Fatalf("replace: %q", doc)
	}
}
