package resolvers

import (
	"context"
	"time"

	"github.com/tehaishokunin/calsync/authfile"
	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/links"
	"github.com/tehaishokunin/calsync/readmodel"
)

// CredentialsService is what the resolvers need of the credentials domain.
type CredentialsService interface {
	Settings(ctx context.Context, companyID string) (*credentials.Settings, error)
	Register(ctx context.Context, companyID, actor string, f authfile.File) (*credentials.Settings, error)
	Verify(ctx context.Context, companyID string) (*credentials.Settings, error)
	Delete(ctx context.Context, companyID, actor string) (bool, error)
	Check(ctx context.Context, companyID string, authFile []byte) *credentials.Check
}

// LinksService is what the resolvers need of the links domain.
type LinksService interface {
	Get(ctx context.Context, companyID, userID string) (*links.Link, error)
	List(ctx context.Context, companyID string, first int, after, status string) (*links.Page, error)
	Set(ctx context.Context, companyID, actor string, in links.Input) (*links.Link, error)
	SetMany(ctx context.Context, companyID, actor string, inputs []links.Input) ([]links.Result, error)
	Resync(ctx context.Context, companyID, userID string) (*links.Link, error)
}

// CalendarService is what the resolvers need of the push domain.
type CalendarService interface {
	Upsert(ctx context.Context, companyID, userID string, in calendar.Input) (*calendar.Pushed, error)
	UpsertMany(ctx context.Context, companyID, userID string, ins []calendar.Input) ([]calendar.ItemResult, error)
	Get(ctx context.Context, companyID, userID, externalID string) (*calendar.Pushed, error)
	Delete(ctx context.Context, companyID, userID, externalID string) (bool, error)
}

// FeedService is what the resolvers need of the change feed.
type FeedService interface {
	Page(ctx context.Context, companyID, after string, first int, userID string) (*changes.Page, error)
	Stream(ctx context.Context, companyID, userID string) (<-chan changes.Change, error)
	// Head is the newest position of the company's feed ("" when empty).
	Head(ctx context.Context, companyID string) (string, error)
}

// ReadModelService is what the resolvers need of the read model.
type ReadModelService interface {
	Availability(ctx context.Context, companyID string, userIDs []string, start, end time.Time) ([]readmodel.Availability, error)
	Events(ctx context.Context, companyID, userID string, start, end time.Time, first int, after string) (*readmodel.Page, error)
}
