package resolvers

import (
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/graph/model"
)

func authSettings(s *credentials.Settings) *model.CalendarAuthSettings {
	if s == nil {
		return nil
	}
	return &model.CalendarAuthSettings{
		TenantID:           s.TenantID,
		ClientID:           s.ClientID,
		ClientSecretHint:   s.ClientSecretHint,
		Status:             model.CalendarAuthStatus(s.Status),
		GrantedPermissions: s.GrantedPermissions,
		RegisteredAt:       s.RegisteredAt,
		VerifiedAt:         s.VerifiedAt,
		LastError:          s.LastError,
	}
}
