package resolvers

import (
	"context"

	"github.com/tehaishokunin/calsync/credentials"
)

// CredentialsService is what the resolvers need of the credentials domain.
type CredentialsService interface {
	Settings(ctx context.Context, companyID string) (*credentials.Settings, error)
}
