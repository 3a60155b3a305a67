package server

import (
	"context"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/tehaishokunin/calsync/apperr"
)

// QueryLimits bound what one GraphQL document may ask for. The size limits
// (Bytes, Tokens, Fields) and the shape limits (Depth, Aliases) are checked
// on the parsed document before validation runs, because validation itself
// costs time that grows faster than the document (pairs of fields, every
// fragment re-entered from every other); Complexity needs the validated
// document and the variables and is checked after. Zero turns a limit off.
type QueryLimits struct {
	// Bytes caps the query text (POST body field, GET parameter or
	// websocket subscribe payload alike).
	Bytes int
	// Tokens caps the lexical tokens the parser reads.
	Tokens int
	// Fields caps the fields the document expands to with every fragment
	// spread inlined, over all its operations and fragment definitions:
	// the work validation does.
	Fields int
	// Depth is the deepest field nesting (introspection fields excluded, so
	// tools can still read the schema when introspection is on).
	Depth int
	// Aliases is how many aliased fields one operation may hold: aliases
	// are how one request repeats an expensive field many times.
	Aliases int
	// Complexity is the operation's cost: one per field, list fields
	// multiplied by the page or input size they ask for.
	Complexity int
}

// documentLimits refuses a document over the size and shape limits before
// gqlgen parses, validates or caches it.
type documentLimits struct{ limits QueryLimits }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = documentLimits{}

func (documentLimits) ExtensionName() string                   { return "DocumentLimits" }
func (documentLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (d documentLimits) MutateOperationParameters(_ context.Context, p *graphql.RawParams) *gqlerror.Error {
	if p.Query == "" {
		return nil // a persisted-query hash: its text passed these checks when it was stored
	}
	if e := d.limits.check(p.Query); e != nil {
		return gqlerror.Wrap(e)
	}
	return nil
}

// check measures a query document against the pre-validation limits and
// returns the QUERY_TOO_COMPLEX error for the first one it passes, or nil.
// A document that does not parse is left to gqlgen, which reports where.
func (l QueryLimits) check(query string) *apperr.Error {
	if l.Bytes > 0 && len(query) > l.Bytes {
		return l.tooLong(len(query))
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, l.Tokens)
	if err != nil {
		if l.Tokens > 0 && strings.Contains(err.Error(), "exceeded token limit") {
			return tooComplex("tokens", l.Tokens, l.Tokens+1, "字句 (token) が多すぎます", "has too many tokens")
		}
		return nil
	}
	s, _ := measureDocument(doc, l.Fields)
	switch {
	case l.Fields > 0 && s.fields > l.Fields:
		return tooComplex("fields", l.Fields, s.fields, "フィールド数 (フラグメント展開後) が多すぎます", "expands to too many fields")
	case s.cycle:
		return nil // validation names the cycle
	case l.Depth > 0 && s.depth > l.Depth:
		return tooComplex("depth", l.Depth, s.depth, "入れ子が深すぎます", "is nested too deeply")
	case l.Aliases > 0 && s.aliases > l.Aliases:
		return tooComplex("aliases", l.Aliases, s.aliases, "別名 (alias) が多すぎます", "uses too many aliases")
	}
	return nil
}

// tooLong is the QUERY_TOO_COMPLEX error for a document of n bytes.
func (l QueryLimits) tooLong(n int) *apperr.Error {
	return tooComplex("bytes", l.Bytes, n, "文書が大きすぎます", "document is too large")
}

// tooComplex is the QUERY_TOO_COMPLEX error naming the limit passed.
func tooComplex(limit string, max, actual int, ja, en string) *apperr.Error {
	return apperr.New(apperr.QueryTooComplex,
		"GraphQL の操作の"+ja+" ("+limit+": "+strconv.Itoa(actual)+"、上限 "+strconv.Itoa(max)+")。",
		"The GraphQL operation "+en+" ("+limit+" "+strconv.Itoa(actual)+", limit "+strconv.Itoa(max)+").").
		WithExtra("limit", limit).WithExtra("max", max).WithExtra("actual", actual).
		WithHint("一度に問い合わせる量を減らしてください。", "Ask for less in one operation.")
}

// documentShape is what measureDocument found: fields summed over every
// operation and fragment definition (each expanded), and the deepest
// nesting and most aliases of any one operation.
type documentShape struct {
	fields, depth, aliases int
	cycle                  bool
}

// measureDocument measures each fragment once (memoised), so a document
// whose fragments spread one another many times costs one visit per
// selection written, never one per selection expanded; it stops early once
// fields passes stopAt (0: never). visits is the number of selections
// visited, for tests.
func measureDocument(doc *ast.QueryDocument, stopAt int) (s documentShape, visits int) {
	m := measurer{frags: map[string]*ast.FragmentDefinition{}, memo: map[string]shape{}, onStack: map[string]bool{}}
	for _, f := range doc.Fragments {
		if _, dup := m.frags[f.Name]; !dup {
			m.frags[f.Name] = f
		}
	}
	add := func(x shape) bool {
		s.fields = satAdd(s.fields, x.fields)
		s.depth = max(s.depth, x.depth)
		s.aliases = max(s.aliases, x.aliases)
		return stopAt > 0 && s.fields > stopAt
	}
	for _, op := range doc.Operations {
		if add(m.set(op.SelectionSet)) {
			break
		}
	}
	for _, f := range doc.Fragments {
		if stopAt > 0 && s.fields > stopAt {
			break
		}
		x := m.fragment(f.Name)
		add(shape{fields: x.fields}) // validation walks each definition on its own
	}
	s.cycle = m.cycle
	return s, m.visits
}

type shape struct{ fields, depth, aliases int }

type measurer struct {
	frags   map[string]*ast.FragmentDefinition
	memo    map[string]shape
	onStack map[string]bool
	visits  int
	cycle   bool
}

func (m *measurer) fragment(name string) shape {
	if s, ok := m.memo[name]; ok {
		return s
	}
	f := m.frags[name]
	if f == nil {
		return shape{}
	}
	if m.onStack[name] {
		m.cycle = true
		return shape{}
	}
	m.onStack[name] = true
	s := m.set(f.SelectionSet)
	delete(m.onStack, name)
	m.memo[name] = s
	return s
}

func (m *measurer) set(set ast.SelectionSet) shape {
	var s shape
	merge := func(c shape, fields, depth, aliases int) {
		s.fields = satAdd(s.fields, satAdd(c.fields, fields))
		s.depth = max(s.depth, c.depth+depth)
		s.aliases = satAdd(s.aliases, satAdd(c.aliases, aliases))
	}
	for _, sel := range set {
		m.visits++
		switch x := sel.(type) {
		case *ast.Field:
			c := m.set(x.SelectionSet)
			if x.Name == "__schema" || x.Name == "__type" {
				// Introspection counts toward size, not shape: GraphiQL's
				// type references nest deeper than any operation.
				merge(shape{fields: c.fields}, 1, 0, 0)
				continue
			}
			alias := 0
			if x.Alias != "" && x.Alias != x.Name {
				alias = 1
			}
			merge(c, 1, 1, alias)
		case *ast.InlineFragment:
			merge(m.set(x.SelectionSet), 0, 0, 0)
		case *ast.FragmentSpread:
			merge(m.fragment(x.Name), 0, 0, 0)
		}
	}
	return s
}

// satAdd adds without overflowing: expanded sizes double per fragment level.
func satAdd(a, b int) int {
	const ceiling = 1 << 40
	if a > ceiling-b {
		return ceiling
	}
	return a + b
}
