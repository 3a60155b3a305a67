package resolvers

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/graph/model"
	"github.com/tehaishokunin/calsync/internal/tracing"
	"github.com/tehaishokunin/calsync/links"
	"github.com/tehaishokunin/calsync/readmodel"
)

func authSettings(ctx context.Context, s *credentials.Settings) *model.CalendarAuthSettings {
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

		ClientSecretExpiresAt: s.ClientSecretExpiresAt,
		DaysUntilSecretExpiry: s.DaysUntilExpiry(time.Now()),
		SecretExpiryHint:      expiryHint(ctx, s.ClientSecretExpiresAt),
	}
}

// expiryHint tells how to add an expiry when none was given.
func expiryHint(ctx context.Context, expires *time.Time) *string {
	if expires != nil {
		return nil
	}
	h := credentials.NoExpiryHint.In(apperr.LangFrom(ctx))
	return &h
}

func authCheck(ctx context.Context, c *credentials.Check) *model.CalendarAuthCheck {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	m := &model.CalendarAuthCheck{TenantID: opt(c.TenantID), ClientID: opt(c.ClientID), ClientSecretHint: opt(c.ClientSecretHint),
		ClientSecretExpiresAt: c.ClientSecretExpiresAt, GrantedPermissions: c.GrantedPermissions, Problems: []*model.ItemError{}}
	if c.Status != "" {
		st := model.CalendarAuthStatus(c.Status)
		m.Status = &st
	}
	if c.ClientID != "" {
		m.SecretExpiryHint = expiryHint(ctx, c.ClientSecretExpiresAt)
	}
	for _, p := range c.Problems {
		m.Problems = append(m.Problems, itemError(ctx, p))
	}
	return m
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

func eventModel(e calendar.Event) *model.CalendarEvent {
	m := &model.CalendarEvent{
		ExternalID: e.ExternalID, OutlookEventID: e.OutlookEventID, Subject: e.Subject, Start: e.Start, End: e.End,
		TimeZone: e.TimeZone, IsAllDay: e.IsAllDay, Categories: e.Categories, ReminderMinutesBeforeStart: e.ReminderMinutes,
		LastModifiedAt: e.LastModifiedAt, Type: model.EventType(e.EventType()),
	}
	if m.Categories == nil {
		m.Categories = []string{}
	}
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	m.ICalUID, m.Body, m.Location, m.Version = opt(e.ICalUID), opt(e.Body), opt(e.Location), opt(e.Version)
	m.SeriesID, m.RecurrenceRule = opt(e.SeriesID), opt(e.RecurrenceRule)
	if e.ShowAs != "" {
		v := model.ShowAs(e.ShowAs)
		m.ShowAs = &v
	}
	if e.Sensitivity != "" {
		v := model.Sensitivity(e.Sensitivity)
		m.Sensitivity = &v
	}
	return m
}

func pushedModel(p *calendar.Pushed) *model.CalendarEvent {
	if p == nil {
		return nil
	}
	m := eventModel(p.Event)
	if p.WebLink != "" {
		m.WebLink = &p.WebLink
	}
	m.LastSyncedAt = p.LastSyncedAt
	return m
}

func eventInput(in *model.CalendarEventInput) calendar.Input {
	out := calendar.Input{
		ExternalID: in.ExternalID, Subject: in.Subject, Body: in.Body, Location: in.Location, Start: in.Start, End: in.End,
		TimeZone: in.TimeZone, IsAllDay: in.IsAllDay, Categories: in.Categories, ReminderMinutes: in.ReminderMinutesBeforeStart,
		BaseVersion: in.BaseVersion, Force: in.Force != nil && *in.Force, RecurrenceRule: in.RecurrenceRule,
	}
	if in.ShowAs != nil {
		s := string(*in.ShowAs)
		out.ShowAs = &s
	}
	if in.Sensitivity != nil {
		s := string(*in.Sensitivity)
		out.Sensitivity = &s
	}
	return out
}

func changeModel(c changes.Change) *model.CalendarChange {
	m := &model.CalendarChange{
		Cursor: c.Cursor, UserID: c.UserID, ExternalID: c.ExternalID, OutlookEventID: c.OutlookEventID,
		ChangeType: model.ChangeType(c.ChangeType), ChangedFields: c.ChangedFields, OccurredAt: c.OccurredAt,
	}
	if m.ChangedFields == nil {
		m.ChangedFields = []string{}
	}
	if c.Event != nil {
		m.Event = eventModel(*c.Event)
	}
	return m
}

func availabilityModel(a readmodel.Availability) *model.UserAvailability {
	m := &model.UserAvailability{UserID: a.UserID, Provider: model.CalendarProvider(a.Provider), SyncedAt: a.SyncedAt,
		Busy: make([]*model.BusyInterval, len(a.Busy))}
	if a.Status != nil {
		st := model.LinkStatus(*a.Status)
		m.Status = &st
	}
	ivs := make([]model.BusyInterval, len(a.Busy)) // one allocation per user, not per interval
	for i, b := range a.Busy {
		ivs[i] = model.BusyInterval{Start: b.Start, End: b.End, ShowAs: model.ShowAs(b.ShowAs)}
		m.Busy[i] = &ivs[i]
	}
	return m
}

// sendChange hands one change to a calendarChanged subscriber's websocket
// and says false when the subscriber has gone. A traced change (one whose
// append stored a traceparent) gets a websocket.send span in its own
// trace, so the change is followed from Graph's notification to here.
func sendChange(ctx context.Context, out chan<- *model.CalendarChange, m *model.CalendarChange, traceparent string) bool {
	span := noSpan
	if traceparent != "" {
		_, span = tracing.Continue(ctx, "websocket.send", []string{traceparent},
			trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attribute.String("calsync.change_type", string(m.ChangeType))))
	}
	defer span.End()
	select {
	case out <- m:
		return true
	case <-ctx.Done():
		span.SetStatus(codes.Error, "subscriber gone")
		return false
	}
}

// noSpan is a span that records nothing.
var noSpan = trace.SpanFromContext(context.Background())
