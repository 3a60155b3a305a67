package resolvers

import (
	"context"

	"github.com/tehaishokunin/calsync/authfile"
	"github.com/tehaishokunin/calsync/credentials"
)

// CredentialsService is what the resolvers need of the credentials domain.
type CredentialsService interface {
	Settings(ctx context.Context, companyID string) (*credentials.Settings, error)
	Register(ctx context.Context, companyID, actor string, f authfile.File) (*credentials.Settings, error)
	Verify(ctx context.Context, companyID string) (*credentials.Settings, error)
	Delete(ctx context.Context, companyID, actor string) (bool, error)
}
