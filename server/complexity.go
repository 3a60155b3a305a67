package server

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// complexityLimit refuses an operation whose cost passes the limit, after
// validation (the cost of a field needs its definition and the variables)
// and before any resolver runs. A refused document is dropped from the
// query cache: what the limits refuse is not kept.
type complexityLimit struct {
	limit  int
	schema graphql.ExecutableSchema
	cache  *queryCache
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = complexityLimit{}

func (complexityLimit) ExtensionName() string                   { return "ComplexityLimit" }
func (complexityLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (q complexityLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Doc.Operations.ForName(oc.OperationName)
	if op == nil || q.limit <= 0 {
		return nil
	}
	c := newCostWalker(q.schema, oc.Variables, q.limit)
	if cost := c.set(ctx, op.SelectionSet); cost > q.limit {
		if q.cache != nil {
			q.cache.Remove(oc.RawQuery)
		}
		return gqlerror.Wrap(tooComplex("complexity", q.limit, cost, "要求が大きすぎます", "asks for too much"))
	}
	return nil
}

// costWalker is gqlgen's complexity calculation (complexity.Calculate:
// the schema's own Complexity per field, else one plus the children) with
// each fragment priced once: a fragment's cost depends only on its fields
// and the variables, not on where it is spread. It stops descending once
// the running total passes the limit.
type costWalker struct {
	es     graphql.ExecutableSchema
	schema *ast.Schema
	vars   map[string]any
	limit  int
	memo   map[string]int
	visits int
}

func newCostWalker(es graphql.ExecutableSchema, vars map[string]any, limit int) *costWalker {
	return &costWalker{es: es, schema: es.Schema(), vars: vars, limit: limit, memo: map[string]int{}}
}

func (c *costWalker) set(ctx context.Context, set ast.SelectionSet) int {
	total := 0
	for _, sel := range set {
		if c.limit > 0 && total > c.limit {
			return total
		}
		c.visits++
		switch s := sel.(type) {
		case *ast.Field:
			total = satAdd(total, c.field(ctx, s))
		case *ast.InlineFragment:
			total = satAdd(total, c.set(ctx, s.SelectionSet))
		case *ast.FragmentSpread:
			if s.Definition == nil {
				continue
			}
			cost, ok := c.memo[s.Name]
			if !ok {
				cost = c.set(ctx, s.Definition.SelectionSet)
				c.memo[s.Name] = cost
			}
			total = satAdd(total, cost)
		}
	}
	return total
}

func (c *costWalker) field(ctx context.Context, f *ast.Field) int {
	if f.Definition == nil || f.ObjectDefinition == nil {
		return 0
	}
	def := c.schema.Types[f.Definition.Type.Name()]
	if def == nil || def.Name == "__Schema" {
		return 0
	}
	child := 0
	switch def.Kind {
	case ast.Object, ast.Interface, ast.Union:
		child = c.set(ctx, f.SelectionSet)
	}
	args := f.ArgumentMap(c.vars)
	price := func(typ string) int {
		if v, ok := c.es.Complexity(ctx, typ, f.Name, child, args); ok && v >= 1 {
			return v
		}
		return satAdd(1, child)
	}
	if f.ObjectDefinition.Kind != ast.Interface {
		return price(f.ObjectDefinition.Name)
	}
	// Interfaces have no price of their own: assume the dearest implementor.
	worst := 0
	for _, t := range c.schema.GetPossibleTypes(f.ObjectDefinition) {
		worst = max(worst, price(t.Name))
	}
	return worst
}
