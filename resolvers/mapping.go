package resolvers

import (
	"context"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/graph/model"
	"github.com/tehaishokunin/calsync/links"
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

func linkModel(l *links.Link) *model.UserCalendarLink {
	if l == nil {
		return nil
	}
	m := &model.UserCalendarLink{
		UserID: l.UserID, Provider: model.CalendarProvider(l.Provider), CalendarID: l.CalendarID,
		LastError: l.LastError, SubscriptionExpiresAt: l.SubscriptionExpiresAt, LastSyncedAt: l.LastSyncedAt,
	}
	if l.Status != nil {
		st := model.LinkStatus(*l.Status)
		m.Status = &st
	}
	return m
}

// itemError renders one failed item of a bulk operation in the caller's
// language.
func itemError(ctx context.Context, err error) *model.ItemError {
	if err == nil {
		return nil
	}
	ae := apperr.As(err)
	lang := apperr.LangFrom(ctx)
	out := &model.ItemError{Code: string(ae.Code), Message: ae.Message.In(lang)}
	if ae.Field != "" {
		f := ae.Field
		out.Field = &f
	}
	if ae.Hint != nil {
		h := ae.Hint.In(lang)
		out.Hint = &h
	}
	return out
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
