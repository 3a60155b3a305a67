// Package credentials owns a company's Entra ID app registration
// (authOfficeCalendar.json): reading the stored settings, and later
// registering, verifying and sealing them.
package credentials

import (
	"context"
	"time"

	"github.com/tehaishokunin/calsync/db"
)

// Status is the outcome of the last verification against Microsoft.
type Status string

// The statuses API.md names.
const (
	StatusVerified       Status = "VERIFIED"
	StatusInvalidSecret  Status = "INVALID_SECRET"
	StatusSecretExpired  Status = "SECRET_EXPIRED"
	StatusTenantNotFound Status = "TENANT_NOT_FOUND"
	StatusAppNotFound    Status = "APP_NOT_FOUND"
	StatusConsentMissing Status = "CONSENT_MISSING"
	StatusUnreachable    Status = "UNREACHABLE"
)

// Settings is what may be shown about a company's credentials: never the
// secret, only its last characters.
type Settings struct {
	TenantID           string
	ClientID           string
	ClientSecretHint   string
	Status             Status
	GrantedPermissions []string
	RegisteredAt       time.Time
	VerifiedAt         *time.Time
	LastError          *string
}

// Service reads and manages credentials.
type Service struct {
	store *db.Store
}

// NewService builds the service.
func NewService(store *db.Store) *Service { return &Service{store: store} }

// Settings returns the company's settings, or nil when none are registered.
func (s *Service) Settings(ctx context.Context, companyID string) (*Settings, error) {
	c, err := s.store.Credential(ctx, companyID)
	if err != nil || c == nil {
		return nil, err
	}
	return settingsOf(c), nil
}

// MaskHint renders the stored hint for display.
func MaskHint(last4 string) string { return "••••" + last4 }

func settingsOf(c *db.Credential) *Settings {
	return &Settings{
		TenantID:           c.TenantID,
		ClientID:           c.ClientID,
		ClientSecretHint:   MaskHint(c.SecretHint),
		Status:             Status(c.Status),
		GrantedPermissions: append([]string{}, c.GrantedRoles...),
		RegisteredAt:       c.RegisteredAt,
		VerifiedAt:         c.VerifiedAt,
		LastError:          c.LastError,
	}
}
