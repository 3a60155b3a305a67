package resolvers

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"

	"github.com/tehaishokunin/calsync/auth"
	"github.com/tehaishokunin/calsync/graph"
	"github.com/tehaishokunin/calsync/graph/model"
)

// Schema is the executable schema over r: the resolvers, the cost of each
// field, and the @hasRole directive that enforces who may call what. serve
// and the tests both build it here, so none runs without the role checks.
func Schema(r *Resolver) graphql.ExecutableSchema {
	return graph.NewExecutableSchema(graph.Config{Resolvers: r, Complexity: Complexity(),
		Directives: graph.DirectiveRoot{HasRole: hasRole}})
}

// hasRole is the @hasRole directive: the schema states who may call each
// field; the resolver runs only for them. UNAUTHENTICATED without a valid
// token, FORBIDDEN for a caller holding none of roles — and, for a member
// where self names an argument, for an argument that is not the member's
// own user id.
func hasRole(ctx context.Context, _ any, next graphql.Resolver, roles []model.Role, self *string) (any, error) {
	caller, err := auth.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	want := make([]auth.Role, len(roles))
	for i, r := range roles {
		want[i] = auth.Role(strings.ToLower(string(r)))
	}
	if caller.Has(want...) {
		return next(ctx)
	}
	if self == nil || !caller.Has(auth.Member) || !ownArgument(ctx, *self, caller.UserID) {
		return nil, auth.ErrForbidden
	}
	return next(ctx)
}

// ownArgument says whether the field's argument name names only userID:
// an ID, each ID of a list, or (left out) nobody else.
func ownArgument(ctx context.Context, name, userID string) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return false
	}
	switch v := fc.Args[name].(type) {
	case nil:
		return true
	case string:
		return v == userID
	case *string:
		return v == nil || *v == userID
	case []string:
		for _, id := range v {
			if id != userID {
				return false
			}
		}
		return true
	default:
		return false // an argument shape this check does not know: refuse
	}
}

// callerOf is who @hasRole let through. Every root field carries the
// directive (TestEveryOperationStatesItsRoles), so the resolvers below it
// always find one; without one the zero Caller names no company and no user.
func callerOf(ctx context.Context) auth.Caller {
	c, _ := auth.FromContext(ctx)
	return c
}
