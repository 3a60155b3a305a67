package server

import (
	"context"
	"strconv"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tehaishokunin/calsync/apperr"
)

// QueryLimits bound what one GraphQL operation may ask for, checked after
// validation and before any resolver runs. Zero turns a limit off.
type QueryLimits struct {
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

// queryLimits is the gqlgen extension enforcing QueryLimits.
type queryLimits struct {
	limits QueryLimits
	schema graphql.ExecutableSchema
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = queryLimits{}

func (queryLimits) ExtensionName() string                   { return "QueryLimits" }
func (queryLimits) Validate(graphql.ExecutableSchema) error { return nil }
func (q queryLimits) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Doc.Operations.ForName(oc.OperationName)
	if op == nil {
		return nil
	}
	w := walker{fragments: oc.Doc.Fragments, seen: map[string]bool{}}
	depth := w.walk(op.SelectionSet, 1)
	if l := q.limits.Depth; l > 0 && depth > l {
		return tooComplex("depth", l, depth, "入れ子が深すぎます", "is nested too deeply")
	}
	if l := q.limits.Aliases; l > 0 && w.aliases > l {
		return tooComplex("aliases", l, w.aliases, "別名 (alias) が多すぎます", "uses too many aliases")
	}
	if l := q.limits.Complexity; l > 0 {
		if c := complexity.Calculate(ctx, q.schema, op, oc.Variables); c > l {
			return tooComplex("complexity", l, c, "要求が大きすぎます", "asks for too much")
		}
	}
	return nil
}

// tooComplex is the QUERY_TOO_COMPLEX error naming the limit passed.
func tooComplex(limit string, max, actual int, ja, en string) *gqlerror.Error {
	return gqlerror.Wrap(apperr.New(apperr.QueryTooComplex,
		"GraphQL の操作の"+ja+" ("+limit+": "+strconv.Itoa(actual)+"、上限 "+strconv.Itoa(max)+")。",
		"The GraphQL operation "+en+" ("+limit+" "+strconv.Itoa(actual)+", limit "+strconv.Itoa(max)+").").
		WithExtra("limit", limit).WithExtra("max", max).WithExtra("actual", actual).
		WithHint("一度に問い合わせる量を減らしてください。", "Ask for less in one operation."))
}

// walker measures depth and counts aliases through fragments.
type walker struct {
	fragments ast.FragmentDefinitionList
	seen      map[string]bool // fragments being expanded (validation already refuses cycles)
	aliases   int
}

func (w *walker) walk(set ast.SelectionSet, depth int) int {
	deepest := depth - 1
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				continue
			}
			if s.Alias != "" && s.Alias != s.Name {
				w.aliases++
			}
			deepest = max(deepest, w.walk(s.SelectionSet, depth+1))
		case *ast.InlineFragment:
			deepest = max(deepest, w.walk(s.SelectionSet, depth))
		case *ast.FragmentSpread:
			f := w.fragments.ForName(s.Name)
			if f == nil || w.seen[s.Name] {
				continue
			}
			w.seen[s.Name] = true
			deepest = max(deepest, w.walk(f.SelectionSet, depth))
			delete(w.seen, s.Name)
		}
	}
	return deepest
}
