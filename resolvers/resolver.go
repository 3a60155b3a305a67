// Package resolvers is the GraphQL edge: each resolver checks the caller's
// role, calls a domain service and maps its result. No business logic lives
// here.
package resolvers

// Resolver holds the domain services the resolvers call.
type Resolver struct {
	Credentials CredentialsService
	Links       LinksService
	Calendar    CalendarService
	Feed        FeedService
	ReadModel   ReadModelService
}
