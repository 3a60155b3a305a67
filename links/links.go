// Package links owns ユーザー管理 → カレンダー連携: which host user's calendar
// is which mailbox. Linking resolves the mailbox through Graph, subscribes
// to its events and takes the first delta; re-pointing and unlinking clean
// up after themselves; linking the same address twice is a no-op.
package links

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/internal/hostid"
	"github.com/tehaishokunin/calsync/outlook"
	"github.com/tehaishokunin/calsync/subscriptions"
)

// Link is what the host sees of a user's calendar link.
type Link struct {
	UserID                string
	Provider              string
	CalendarID            *string
	Status                *string
	LastError             *string
	SubscriptionExpiresAt *time.Time
	LastSyncedAt          *time.Time
}

// Syncer runs a link's delta rounds.
type Syncer interface {
	Initial(ctx context.Context, linkID int64) error
	Resync(ctx context.Context, linkID int64) error
}

// Service links and unlinks users.
type Service struct {
	store    *db.Store
	sessions *credentials.Sessions
	subs     *subscriptions.Manager
	sync     Syncer
	log      *slog.Logger
	cursors  *cursor.Codec
	maxBulk  int
}

// NewService builds the service.
func NewService(store *db.Store, sessions *credentials.Sessions, subs *subscriptions.Manager, sync Syncer, cursors *cursor.Codec, log *slog.Logger) *Service {
	return &Service{store: store, sessions: sessions, subs: subs, sync: sync, cursors: cursors, log: log, maxBulk: 500}
}

// Errors of linking.
var (
	ErrNoCredentials = apperr.New(apperr.CredentialsMissing,
		"カレンダー認証設定が登録されていません。先に 企業設定 → カレンダー認証設定 で authOfficeCalendar.json を登録してください。",
		"No calendar credentials are registered for the company; upload authOfficeCalendar.json in company settings first.")
)

// Get returns a user's link; provider NONE when not linked.
func (s *Service) Get(ctx context.Context, companyID, userID string) (*Link, error) {
	if err := hostid.Check("userId", userID); err != nil {
		return nil, err
	}
	l, err := s.store.Link(ctx, companyID, userID)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return &Link{UserID: userID, Provider: db.ProviderNone}, nil
	}
	return s.view(ctx, l)
}

func (s *Service) view(ctx context.Context, l *db.CalendarLink) (*Link, error) {
	out := &Link{UserID: l.UserID, Provider: l.Provider, LastSyncedAt: l.LastSyncedAt}
	if l.Provider == db.ProviderNone {
		return out, nil
	}
	status := l.Status
	out.CalendarID, out.Status, out.LastError = l.CalendarID, &status, l.LastError
	subs, err := s.store.SubscriptionsOfLink(ctx, l.ID)
	if err != nil {
		return nil, err
	}
	for _, sub := range subs {
		if out.SubscriptionExpiresAt == nil || sub.ExpiresAt.After(*out.SubscriptionExpiresAt) {
			t := sub.ExpiresAt
			out.SubscriptionExpiresAt = &t
		}
	}
	return out, nil
}

// Page is one page of links.
type Page struct {
	Links     []*Link
	Cursors   []string
	HasNext   bool
	EndCursor string
}

// List pages through the company's linked users.
func (s *Service) List(ctx context.Context, companyID string, first int, after, status string) (*Page, error) {
	if first <= 0 || first > 200 {
		if first != 0 {
			return nil, apperr.New(apperr.InvalidInput, "first は 1〜200 で指定してください。", "first must be between 1 and 200.").WithField("first")
		}
		first = 50
	}
	var afterID int64
	if after != "" {
		var err error
		if afterID, err = s.cursors.Decode("link", companyID, after); err != nil {
			return nil, err
		}
	}
	p, err := s.store.Links(ctx, companyID, afterID, status, first)
	if err != nil {
		return nil, err
	}
	out := &Page{HasNext: p.HasMore}
	for i := range p.Links {
		v, err := s.view(ctx, &p.Links[i])
		if err != nil {
			return nil, err
		}
		out.Links = append(out.Links, v)
		out.Cursors = append(out.Cursors, s.cursors.Encode("link", companyID, p.Links[i].ID))
	}
	if n := len(out.Cursors); n > 0 {
		out.EndCursor = out.Cursors[n-1]
	}
	return out, nil
}

// Input is one link request.
type Input struct {
	UserID     string
	Provider   string
	CalendarID string
}

// Set links (or with provider NONE unlinks) a user's calendar.
func (s *Service) Set(ctx context.Context, companyID, actor string, in Input) (*Link, error) {
	if err := hostid.Check("userId", in.UserID); err != nil {
		return nil, err
	}
	// One link change per user at a time, across replicas (db.LockKeys).
	unlock, err := s.store.LockKeys(ctx, "link\x00"+companyID+"\x00"+in.UserID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	switch in.Provider {
	case db.ProviderNone:
		return s.unlink(ctx, companyID, actor, in.UserID)
	case db.ProviderOutlook:
		return s.link(ctx, companyID, actor, in)
	default:
		return nil, apperr.New(apperr.InvalidInput, "provider が正しくありません。", "Unknown provider.").WithField("provider")
	}
}

func (s *Service) link(ctx context.Context, companyID, actor string, in Input) (*Link, error) {
	addr, err := NormalizeAddress(in.CalendarID)
	if err != nil {
		return nil, err
	}
	sess, err := s.sessions.Company(ctx, companyID)
	if errors.Is(err, credentials.ErrNotRegistered) {
		return nil, ErrNoCredentials
	}
	if err != nil {
		return nil, err
	}
	prev, err := s.store.Link(ctx, companyID, in.UserID)
	if err != nil {
		return nil, err
	}
	var oldSubs []db.GraphSubscription
	if prev != nil {
		if oldSubs, err = s.store.SubscriptionsOfLink(ctx, prev.ID); err != nil {
			return nil, err
		}
	}
	if prev != nil && prev.Provider == db.ProviderOutlook && deref(prev.CalendarID) == addr && prev.Status == db.LinkActive && len(oldSubs) > 0 {
		return s.view(ctx, prev) // same address again: nothing to do
	}
	graphID, err := s.resolve(ctx, sess, addr)
	notReady := outlook.KindOf(err) == outlook.KindMailboxNotReady
	if notReady {
		graphID, err = addr, nil // the user exists; the mailbox is on its way
	}
	if err != nil {
		return nil, s.sessions.UserError(ctx, companyID, err, addr)
	}

	// Subscribe before touching the old link, so a failure leaves the
	// previous state as it was.
	row := &db.CalendarLink{CompanyID: companyID, UserID: in.UserID, Provider: db.ProviderOutlook,
		CalendarID: &addr, GraphUserID: &graphID, Status: db.LinkPending}
	if prev != nil {
		row.ID, row.LastSyncedAt = prev.ID, prev.LastSyncedAt
	} else {
		if err := s.store.SaveLink(ctx, row); err != nil {
			return nil, err
		}
	}
	if !notReady {
		_, err = s.subs.Subscribe(ctx, row)
		notReady = outlook.KindOf(err) == outlook.KindMailboxNotReady
	}
	if notReady {
		// A new hire's mailbox still being provisioned: the link is kept
		// PENDING and activated on its own once the mailbox exists.
		return s.keepWaiting(ctx, companyID, actor, in.UserID, addr, prev, row, oldSubs, db.LinkPending,
			&outlook.Error{Op: "linking", Kind: outlook.KindMailboxNotReady})
	}
	if err != nil && pollable(err) {
		// No subscription can be made (Graph's validation request never
		// reached calsync, or the tenant refuses subscriptions): the link
		// works without notifications, read every resync interval, and
		// the subscription is retried on a backoff.
		return s.keepWaiting(ctx, companyID, actor, in.UserID, addr, prev, row, oldSubs, db.LinkPolling, err)
	}
	if err != nil {
		if prev == nil {
			// No half-made link: remove the row we just made.
			_ = s.store.DeleteLink(context.WithoutCancel(ctx), row.ID)
		}
		return nil, s.subscribeError(ctx, companyID, err, addr)
	}
	for _, old := range oldSubs {
		_ = s.subs.Unsubscribe(ctx, old)
	}
	if err := s.store.SaveLink(ctx, row); err != nil {
		return nil, err
	}
	if prev == nil || deref(prev.CalendarID) != addr {
		if err := s.forgetMailbox(ctx, row.ID); err != nil {
			return nil, err
		}
	}
	if err := s.sync.Initial(ctx, row.ID); err != nil {
		msg := "初回同期に失敗しました（自動で再試行します） / the first sync failed and will be retried: " + err.Error()
		next := time.Now().Add(subscriptions.MailboxWait(0)) // ActivatePending tries again
		_ = s.store.ScheduleLinkAttempt(ctx, row.ID, db.LinkPending, &next, msg)
		s.log.WarnContext(ctx, "initial sync failed", slog.Int64("link", row.ID), slog.String("error", err.Error()))
	}
	s.audit(ctx, companyID, actor, "link.set", map[string]any{"user_id": in.UserID, "calendar_id": addr, "previous": prevAddress(prev)})
	s.log.InfoContext(ctx, "user linked", slog.String("company", companyID), slog.String("user", in.UserID), slog.Int64("link", row.ID))
	return s.Get(ctx, companyID, in.UserID)
}

// keepWaiting keeps a link that cannot be subscribed yet, in status
// (PENDING: its mailbox does not exist yet; POLLING: usable, read every
// resync interval, so it gets its first sync now), with the reason and
// the next attempt scheduled; the previous mailbox's subscriptions go,
// since the link now names this address.
func (s *Service) keepWaiting(ctx context.Context, companyID, actor, userID, addr string, prev, row *db.CalendarLink,
	oldSubs []db.GraphSubscription, status string, cause error) (*Link, error) {
	for _, old := range oldSubs {
		_ = s.subs.Unsubscribe(ctx, old)
	}
	row.Status, row.Attempts = status, 0
	if err := s.store.SaveLink(ctx, row); err != nil {
		return nil, err
	}
	if prev == nil || deref(prev.CalendarID) != addr {
		if err := s.forgetMailbox(ctx, row.ID); err != nil {
			return nil, err
		}
	}
	if err := s.subs.WaitForMailbox(ctx, row, time.Now(), cause); err != nil {
		return nil, err
	}
	if status == db.LinkPolling {
		if err := s.sync.Initial(ctx, row.ID); err != nil {
			s.log.WarnContext(ctx, "initial sync of a polling link failed", slog.Int64("link", row.ID), slog.String("error", err.Error()))
		}
	}
	s.audit(ctx, companyID, actor, "link.set", map[string]any{"user_id": userID, "calendar_id": addr, "previous": prevAddress(prev), "status": status})
	s.log.InfoContext(ctx, "user linked without a subscription yet", slog.String("company", companyID), slog.String("user", userID),
		slog.Int64("link", row.ID), slog.String("status", status), slog.String("kind", string(outlook.KindOf(cause))))
	return s.Get(ctx, companyID, userID)
}

// pollable says whether a failed subscription leaves the mailbox usable:
// Graph's validation request did not reach calsync, or Graph refused the
// subscription itself (not the mailbox).
func pollable(err error) bool {
	var oe *outlook.Error
	if !errors.As(err, &oe) {
		return false
	}
	return (oe.Kind == outlook.KindBadRequest && strings.Contains(strings.ToLower(oe.Message), "validation")) ||
		(oe.Kind == outlook.KindAccessDenied && strings.EqualFold(oe.Code, "ExtensionError"))
}

func prevAddress(p *db.CalendarLink) any {
	if p == nil || p.CalendarID == nil || p.Provider == db.ProviderNone {
		return nil
	}
	return *p.CalendarID
}

// resolve finds the mailbox's Graph user id. GET /users needs User.Read.All;
// an app with only Calendars.ReadWrite is checked through the mailbox's
// calendar instead and addressed by mail.
func (s *Service) resolve(ctx context.Context, sess *outlook.Session, addr string) (string, error) {
	u, err := sess.GetUser(ctx, addr)
	if err == nil {
		return u.ID, nil
	}
	var oe *outlook.Error
	if errors.As(err, &oe) && oe.Kind == outlook.KindAccessDenied && oe.Code == "Authorization_RequestDenied" {
		if _, err := sess.CalendarOwner(ctx, addr); err != nil {
			return "", err
		}
		return addr, nil
	}
	return "", err
}

func (s *Service) unlink(ctx context.Context, companyID, actor, userID string) (*Link, error) {
	prev, err := s.store.Link(ctx, companyID, userID)
	if err != nil {
		return nil, err
	}
	if prev == nil || prev.Provider == db.ProviderNone {
		return &Link{UserID: userID, Provider: db.ProviderNone}, nil
	}
	if err := s.subs.UnsubscribeLink(ctx, prev.ID); err != nil {
		s.log.WarnContext(ctx, "unsubscribing failed", slog.Int64("link", prev.ID), slog.String("error", err.Error()))
	}
	if err := s.forgetMailbox(ctx, prev.ID); err != nil {
		return nil, err
	}
	prev.Provider, prev.Status, prev.LastError = db.ProviderNone, db.LinkActive, nil
	prev.CalendarID, prev.GraphUserID = nil, nil
	if err := s.store.SaveLink(ctx, prev); err != nil {
		return nil, err
	}
	s.audit(ctx, companyID, actor, "link.unset", map[string]any{"user_id": userID})
	return &Link{UserID: userID, Provider: db.ProviderNone}, nil
}

// forgetMailbox drops what calsync read from a link's mailbox (its delta
// position and its mirror) when the link stops naming that mailbox: the
// next round starts afresh.
func (s *Service) forgetMailbox(ctx context.Context, linkID int64) error {
	if err := s.store.DeleteDelta(ctx, linkID); err != nil {
		return err
	}
	return s.store.DeleteMirror(ctx, linkID)
}

func (s *Service) audit(ctx context.Context, companyID, actor, action string, detail map[string]any) {
	if err := s.store.Audit(ctx, &db.AuditEntry{CompanyID: companyID, Actor: actor, Action: action, Detail: detail}); err != nil {
		s.log.WarnContext(ctx, "writing audit entry failed", slog.String("error", err.Error()))
	}
}

// Result is one item of a bulk link.
type Result struct {
	UserID string
	Link   *Link
	Err    error
}

// SetMany links many users; each succeeds or fails on its own.
func (s *Service) SetMany(ctx context.Context, companyID, actor string, inputs []Input) ([]Result, error) {
	if len(inputs) > s.maxBulk {
		return nil, apperr.New(apperr.InvalidInput, fmt.Sprintf("一度に設定できるのは %d 件までです。", s.maxBulk), fmt.Sprintf("At most %d links per call.", s.maxBulk)).WithField("inputs")
	}
	out := make([]Result, len(inputs))
	for i, in := range inputs {
		l, err := s.Set(ctx, companyID, actor, in)
		out[i] = Result{UserID: in.UserID, Link: l, Err: err}
	}
	return out, nil
}

// Resync re-reads the user's calendar from Outlook now.
func (s *Service) Resync(ctx context.Context, companyID, userID string) (*Link, error) {
	if err := hostid.Check("userId", userID); err != nil {
		return nil, err
	}
	l, err := s.store.Link(ctx, companyID, userID)
	if err != nil {
		return nil, err
	}
	if l == nil || l.Provider == db.ProviderNone {
		return nil, ErrNotLinked
	}
	if err := s.sync.Resync(ctx, l.ID); err != nil {
		return nil, err
	}
	return s.Get(ctx, companyID, userID)
}

// ErrNotLinked is answered for calendar operations on unlinked users.
var ErrNotLinked = apperr.New(apperr.NotLinked,
	"このユーザーはカレンダー連携されていません。ユーザー管理でカレンダー連携を設定してください。",
	"This user's calendar is not linked; set カレンダー連携 in user management first.").WithField("userId")

// subscribeError is what the caller is told when Graph would not create
// the mailbox's subscription.
func (s *Service) subscribeError(ctx context.Context, companyID string, err error, addr string) error {
	if errors.Is(err, subscriptions.ErrInsecureURL) {
		return apperr.New(apperr.Unavailable, "CALSYNC_PUBLIC_URL が https ではないため、Microsoft Graph から通知を受け取れません。運用担当者に連絡してください。",
			"CALSYNC_PUBLIC_URL is not https, so Microsoft Graph cannot deliver notifications; contact the operator.").Wrap(err)
	}
	var oe *outlook.Error
	if errors.As(err, &oe) && oe.Kind == outlook.KindBadRequest && strings.Contains(oe.Message, "validation") {
		return apperr.New(apperr.Unavailable, "Microsoft Graph が calsync の通知用 URL に接続できませんでした（検証に失敗）。CALSYNC_PUBLIC_URL が外部から到達可能か確認してください。",
			"Microsoft Graph could not validate calsync's notification URL; check that CALSYNC_PUBLIC_URL is reachable from the internet.").Wrap(err)
	}
	return s.sessions.UserError(ctx, companyID, err, addr)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
