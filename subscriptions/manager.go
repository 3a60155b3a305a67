// Package subscriptions owns the Graph subscription lifecycle of calendar
// links: create on link (random clientState, longest expiration), delete on
// unlink, renew on a timer shared safely by several replicas, answer
// lifecycle notifications, and reconcile at start-up so a link never lapses
// silently.
package subscriptions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"strconv"
	"time"

	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/outlook"
)

// Paths under CALSYNC_PUBLIC_URL that Graph posts to.
const (
	NotificationPath = "/webhooks/graph/notifications"
	LifecyclePath    = "/webhooks/graph/lifecycle"
)

// Lifetime is how far ahead calsync asks a subscription to live: Graph's
// maximum for events less a margin for clock skew.
const Lifetime = outlook.MaxEventSubscription - 5*time.Minute

// maxFailures is how many renewal failures in a row mark a link ERROR.
const maxFailures = 5

// Resyncer runs a link's delta sync (after a recreate or a missed
// notification).
type Resyncer interface {
	Resync(ctx context.Context, linkID int64) error
}

// Config is the manager's settings.
type Config struct {
	PublicURL *url.URL
	// RequireHTTPS refuses a non-https public URL before calling Graph
	// (always with real Microsoft Graph).
	RequireHTTPS bool
	// VerifyOnStart makes reconciliation ask Graph whether each stored
	// subscription still exists (one call per link): for development
	// against an in-process emulator, which forgets everything on restart.
	VerifyOnStart bool
	Now           func() time.Time
}

// Manager creates, renews and deletes subscriptions.
type Manager struct {
	cfg      Config
	store    *db.Store
	sessions *credentials.Sessions
	resync   Resyncer
	log      *slog.Logger
	metrics  *Metrics
}

// NewManager builds a manager; resync (the syncer) runs a delta round
// after a recreation or a missed notification, and may be nil where there
// is none.
func NewManager(cfg Config, store *db.Store, sessions *credentials.Sessions, resync Resyncer, metrics *Metrics, log *slog.Logger) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, store: store, sessions: sessions, resync: resync, metrics: metrics, log: log}
}

// ErrInsecureURL is returned when Graph would be asked to post to http.
var ErrInsecureURL = errors.New("CALSYNC_PUBLIC_URL must be https for Microsoft Graph to deliver notifications")

func (m *Manager) session(ctx context.Context, companyID string) (*outlook.Session, error) {
	return m.sessions.Company(ctx, companyID)
}

func newClientState() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// RenewAt picks when to renew a subscription expiring at exp: one to two
// days before, spread at random so renewals of many subscriptions created
// together do not arrive at Graph together.
func RenewAt(exp time.Time) time.Time { return renewAt(exp) }

func renewAt(exp time.Time) time.Time {
	j, _ := rand.Int(rand.Reader, big.NewInt(int64(24*time.Hour)))
	return exp.Add(-24*time.Hour - time.Duration(j.Int64()))
}

// Subscribe creates a subscription on the link's mailbox and stores it.
// Graph first runs its validation handshake against our webhook URLs.
func (m *Manager) Subscribe(ctx context.Context, link *db.CalendarLink) (*db.GraphSubscription, error) {
	if m.cfg.RequireHTTPS && m.cfg.PublicURL.Scheme != "https" {
		return nil, ErrInsecureURL
	}
	sess, err := m.session(ctx, link.CompanyID)
	if err != nil {
		return nil, err
	}
	mailbox := deref(link.GraphUserID)
	if mailbox == "" {
		mailbox = deref(link.CalendarID)
	}
	now := m.cfg.Now()
	state := newClientState()
	sub, err := sess.CreateSubscription(ctx, outlook.SubscriptionRequest{
		Resource:        "/users/" + mailbox + "/events",
		ChangeTypes:     []string{"created", "updated", "deleted"},
		NotificationURL: m.cfg.PublicURL.String() + NotificationPath,
		LifecycleURL:    m.cfg.PublicURL.String() + LifecyclePath,
		ClientState:     state,
		Expiration:      now.Add(Lifetime),
	})
	if err != nil {
		m.sessions.ReportRejected(ctx, link.CompanyID, err)
		return nil, fmt.Errorf("creating subscription for link %d: %w", link.ID, err)
	}
	row := &db.GraphSubscription{
		ID: sub.ID, LinkID: link.ID, CompanyID: link.CompanyID, Resource: sub.Resource,
		ExpiresAt: sub.Expiration, RenewAt: renewAt(sub.Expiration), ClientState: state, Status: db.SubActive,
	}
	if err := m.store.InsertSubscription(ctx, row); err != nil {
		// Do not leave a subscription in Graph that nothing renews.
		_ = sess.DeleteSubscription(context.WithoutCancel(ctx), sub.ID)
		return nil, err
	}
	m.log.InfoContext(ctx, "subscription created", slog.Int64("link", link.ID), slog.String("subscription", sub.ID),
		slog.Time("expires", sub.Expiration))
	return row, nil
}

// Unsubscribe deletes a subscription in Graph (already gone is fine) and
// its row. A Graph failure other than not-found is returned and the row is
// kept, so the renewal loop does not forget it.
func (m *Manager) Unsubscribe(ctx context.Context, sub db.GraphSubscription) error {
	sess, err := m.session(ctx, sub.CompanyID)
	if err == nil {
		err = sess.DeleteSubscription(ctx, sub.ID)
	}
	if err != nil && outlook.KindOf(err) != outlook.KindNotFound {
		m.log.WarnContext(ctx, "deleting subscription in Graph failed; it will expire on its own", slog.String("subscription", sub.ID), slog.String("error", err.Error()))
	}
	return m.store.DeleteSubscription(ctx, sub.ID)
}

// UnsubscribeLink removes every subscription of a link.
func (m *Manager) UnsubscribeLink(ctx context.Context, linkID int64) error {
	subs, err := m.store.SubscriptionsOfLink(ctx, linkID)
	return m.unsubscribeAll(ctx, subs, err)
}

// RemoveAll removes every subscription of a company (before its
// credentials are deleted).
func (m *Manager) RemoveAll(ctx context.Context, companyID string) error {
	subs, err := m.store.SubscriptionsOfCompany(ctx, companyID)
	return m.unsubscribeAll(ctx, subs, err)
}

func (m *Manager) unsubscribeAll(ctx context.Context, subs []db.GraphSubscription, listErr error) error {
	if listErr != nil {
		return listErr
	}
	var errs []error
	for _, s := range subs {
		errs = append(errs, m.Unsubscribe(ctx, s))
	}
	return errors.Join(errs...)
}

// RecreateAll moves every link of a company to a new subscription under
// the company's current credentials, then resyncs it.
func (m *Manager) RecreateAll(ctx context.Context, companyID string) error {
	links, err := m.store.ActiveLinks(ctx, companyID)
	if err != nil {
		return err
	}
	var errs []error
	for i := range links {
		errs = append(errs, m.recreate(ctx, &links[i]))
	}
	return errors.Join(errs...)
}

// recreate replaces a link's subscriptions and resyncs it. One recreation
// per link runs at a time across replicas; a second asked for meanwhile is
// covered by the first and returns at once. Every subscription of the link
// other than the new one is superseded and deleted, whoever made it.
func (m *Manager) recreate(ctx context.Context, link *db.CalendarLink) error {
	key := "recreate:" + strconv.FormatInt(link.ID, 10)
	won, err := m.store.Claim(ctx, key, recreateHold)
	if err != nil {
		return err
	}
	if !won {
		m.log.InfoContext(ctx, "subscription already being recreated", slog.Int64("link", link.ID))
		return nil
	}
	defer func() {
		if err := m.store.Release(context.WithoutCancel(ctx), key); err != nil {
			m.log.WarnContext(ctx, "releasing a recreate claim failed", slog.String("error", err.Error()))
		}
	}()
	created, err := m.Subscribe(ctx, link)
	if err != nil {
		m.markLink(ctx, link.ID, "購読を作成できません / cannot create the Graph subscription: "+err.Error())
		return err
	}
	if err := m.supersede(ctx, link.ID, created.ID); err != nil {
		return err
	}
	if m.resync != nil {
		if err := m.resync.Resync(ctx, link.ID); err != nil {
			m.log.WarnContext(ctx, "resync after recreate failed", slog.Int64("link", link.ID), slog.String("error", err.Error()))
		}
	}
	return nil
}

// Mailbox waits: a mailbox that does not exist yet (a new hire's, still
// being provisioned) is tried again after 1 minute, doubling up to an hour.
const (
	firstMailboxWait = time.Minute
	maxMailboxWait   = time.Hour
)

// MailboxWait is how long to wait before activation attempt n+1.
func MailboxWait(attempts int) time.Duration {
	d := firstMailboxWait
	for i := 0; i < attempts && d < maxMailboxWait; i++ {
		d *= 2
	}
	return min(d, maxMailboxWait)
}

// WaitForMailbox records a link whose mailbox could not be subscribed:
// one not provisioned yet stays PENDING and is tried again on a backoff
// (ActivatePending); one without an Exchange Online mailbox is ERROR and
// waits for the admin; anything else (an outage) is tried again too.
func (m *Manager) WaitForMailbox(ctx context.Context, link *db.CalendarLink, now time.Time, cause error) error {
	waiting := db.LinkPending
	if link.Status == db.LinkPolling {
		waiting = db.LinkPolling // usable meanwhile; only the subscription is retried
	}
	switch outlook.KindOf(cause) {
	case outlook.KindMailboxNotEnabled:
		return m.store.ScheduleLinkAttempt(ctx, link.ID, db.LinkError, nil,
			"Exchange Online のメールボックスがありません（ライセンス未割り当て、ゲスト、オンプレミスなど） / the user has no Exchange Online mailbox (no licence with Exchange, a guest, or on-premises)")
	case outlook.KindMailboxNotReady:
		next := now.Add(MailboxWait(link.Attempts))
		return m.store.ScheduleLinkAttempt(ctx, link.ID, waiting, &next,
			"メールボックスの準備中です（新しいユーザーは作成に時間がかかります）。自動で再試行します / the mailbox is still being provisioned; calsync retries on its own")
	default:
		next := now.Add(MailboxWait(link.Attempts))
		reason := "購読を作成できません。自動で再試行します / cannot create the Graph subscription yet; calsync retries on its own: "
		if waiting == db.LinkPolling {
			reason = "変更通知を受け取れないため、定期的に予定表を読み込んでいます（購読は自動で再試行します） / no change notifications: calsync reads the calendar every resync interval and retries the subscription: "
		}
		return m.store.ScheduleLinkAttempt(ctx, link.ID, waiting, &next, reason+cause.Error())
	}
}

// ActivatePending tries again every PENDING link whose next attempt is due
// at now (claimed with SKIP LOCKED, so each replica takes its own): it
// subscribes the mailbox and runs the first sync, which makes the link
// ACTIVE without the admin doing anything; a mailbox still not ready waits
// longer. It returns how many links it tried.
func (m *Manager) ActivatePending(ctx context.Context, now time.Time) int {
	due, err := m.store.ClaimDuePendingLinks(ctx, now, 2*time.Minute, 50)
	if err != nil {
		m.log.WarnContext(ctx, "claiming pending links failed", slog.String("error", err.Error()))
		return 0
	}
	for i := range due {
		l := &due[i]
		created, err := m.Subscribe(ctx, l)
		if err != nil {
			if werr := m.WaitForMailbox(ctx, l, now, err); werr != nil {
				m.log.WarnContext(ctx, "recording a pending link failed", slog.Int64("link", l.ID), slog.String("error", werr.Error()))
			}
			m.log.InfoContext(ctx, "mailbox still not ready", slog.Int64("link", l.ID), slog.String("kind", string(outlook.KindOf(err))))
			continue
		}
		if err := m.supersede(ctx, l.ID, created.ID); err != nil {
			m.log.WarnContext(ctx, "removing superseded subscriptions failed", slog.Int64("link", l.ID), slog.String("error", err.Error()))
		}
		if err := m.store.ActivateLink(ctx, l.ID); err != nil {
			m.log.WarnContext(ctx, "activating link failed", slog.Int64("link", l.ID), slog.String("error", err.Error()))
			continue
		}
		if m.resync != nil {
			if err := m.resync.Resync(ctx, l.ID); err != nil {
				next := now.Add(MailboxWait(l.Attempts))
				_ = m.store.ScheduleLinkAttempt(ctx, l.ID, db.LinkPending, &next, "初回同期に失敗しました（自動で再試行します） / the first sync failed and will be retried: "+err.Error())
				continue
			}
		}
		m.log.InfoContext(ctx, "pending link activated", slog.Int64("link", l.ID))
	}
	return len(due)
}

// supersede deletes every subscription of the link but keep, in Graph and
// in calsync, whoever made them.
func (m *Manager) supersede(ctx context.Context, linkID int64, keep string) error {
	all, err := m.store.SubscriptionsOfLink(ctx, linkID)
	if err != nil {
		return err
	}
	for _, s := range all {
		if s.ID != keep {
			_ = m.Unsubscribe(ctx, s)
		}
	}
	return nil
}

func (m *Manager) markLink(ctx context.Context, linkID int64, reason string) {
	if err := m.store.SetLinkStatus(ctx, linkID, db.LinkError, &reason); err != nil {
		m.log.WarnContext(ctx, "marking link failed", slog.Int64("link", linkID), slog.String("error", err.Error()))
	}
}

// Renew extends a subscription. A subscription Graph no longer knows is
// recreated and its link resynced; throttling and outages back off
// (honouring Retry-After); repeated failures mark the link ERROR.
func (m *Manager) Renew(ctx context.Context, sub db.GraphSubscription) error {
	now := m.cfg.Now()
	sess, err := m.session(ctx, sub.CompanyID)
	var renewed outlook.Subscription
	if err == nil {
		renewed, err = sess.RenewSubscription(ctx, sub.ID, now.Add(Lifetime))
	}
	if err == nil {
		m.metrics.renewal("ok")
		return m.store.RenewedSubscription(ctx, sub.ID, renewed.Expiration, renewAt(renewed.Expiration))
	}
	switch outlook.KindOf(err) {
	case outlook.KindNotFound:
		m.metrics.renewal("recreated")
		m.log.InfoContext(ctx, "subscription gone from Graph; recreating", slog.String("subscription", sub.ID))
		link, lerr := m.store.LinkByID(ctx, sub.LinkID)
		if lerr != nil || link == nil {
			_ = m.store.DeleteSubscription(ctx, sub.ID)
			return lerr
		}
		if err := m.store.DeleteSubscription(ctx, sub.ID); err != nil {
			return err
		}
		return m.recreate(ctx, link)
	}
	m.metrics.renewal("failed")
	if m.sessions.ReportRejected(ctx, sub.CompanyID, err) {
		_, _ = m.store.FailedRenewal(ctx, sub.ID, now.Add(time.Hour), err.Error())
		return err
	}
	delay := backoff(sub.RenewalFailures)
	var oe *outlook.Error
	if errors.As(err, &oe) && oe.RetryAfter > delay {
		delay = oe.RetryAfter
	}
	n, ferr := m.store.FailedRenewal(ctx, sub.ID, now.Add(delay), err.Error())
	if ferr != nil {
		return ferr
	}
	if n >= maxFailures {
		m.markLink(ctx, sub.LinkID, fmt.Sprintf("Graph の購読を %d 回続けて更新できませんでした（%s）。Microsoft 365 の状態と認証設定を確認してください。 / Renewing the Graph subscription failed %d times in a row (%s); check Microsoft 365 and the credentials.", n, kindText(err), n, kindText(err)))
	}
	return err
}

func kindText(err error) string { return string(outlook.KindOf(err)) }

// backoff grows from 1 minute to 1 hour with the failure count.
func backoff(failures int) time.Duration {
	d := time.Minute << min(failures, 6)
	return min(d, time.Hour)
}

// Lifecycle events Graph sends.
const (
	EventReauthorizationRequired = "reauthorizationRequired"
	EventSubscriptionRemoved     = "subscriptionRemoved"
	EventMissed                  = "missed"
)

// Folding: Graph may deliver a lifecycle notification more than once, and
// anyone holding a leaked clientState can replay one. The same event for
// the same subscription within foldWindow is acted on once, across
// replicas; a recreation holds its link for at most recreateHold.
const (
	foldWindow   = 30 * time.Second
	recreateHold = 2 * time.Minute
)

// HandleLifecycle acts on a lifecycle notification for a known
// subscription (its clientState already checked), once per subscription
// and event within foldWindow. A failed attempt releases its claim so the
// inbox's retry acts again.
func (m *Manager) HandleLifecycle(ctx context.Context, subID, event string) error {
	sub, err := m.store.Subscription(ctx, subID)
	if err != nil {
		return err
	}
	if sub == nil {
		return nil // unlinked or superseded since; nothing to do
	}
	key := "lifecycle:" + subID + ":" + event
	won, err := m.store.Claim(ctx, key, foldWindow)
	if err != nil {
		return err
	}
	if !won {
		m.metrics.folded(event)
		m.log.DebugContext(ctx, "repeated lifecycle notification folded", slog.String("subscription", subID), slog.String("event", event))
		return nil
	}
	if err := m.handleLifecycle(ctx, sub, event); err != nil {
		if rerr := m.store.Release(context.WithoutCancel(ctx), key); rerr != nil {
			m.log.WarnContext(ctx, "releasing a lifecycle claim failed", slog.String("error", rerr.Error()))
		}
		return err
	}
	return nil
}

func (m *Manager) handleLifecycle(ctx context.Context, sub *db.GraphSubscription, event string) error {
	subID := sub.ID
	switch event {
	case EventReauthorizationRequired:
		// Renewing also reauthorizes.
		return m.Renew(ctx, *sub)
	case EventSubscriptionRemoved:
		link, err := m.store.LinkByID(ctx, sub.LinkID)
		if err != nil {
			return err
		}
		if link == nil || link.Provider == db.ProviderNone {
			return m.store.DeleteSubscription(ctx, sub.ID)
		}
		// recreate supersedes the removed one: deleted in Graph too, should
		// the notification have been a replay and it still be live there.
		return m.recreate(ctx, link)
	case EventMissed:
		if m.resync == nil {
			return nil
		}
		return m.resync.Resync(ctx, sub.LinkID)
	default:
		m.log.WarnContext(ctx, "unknown lifecycle event acknowledged", slog.String("subscription", subID), slog.String("event", event))
		return nil
	}
}

// Reconcile makes sure every linked user has a live subscription:
// a missing or expired one is recreated and the link resynced.
func (m *Manager) Reconcile(ctx context.Context) error {
	links, err := m.store.ActiveLinks(ctx, "")
	if err != nil {
		return err
	}
	now := m.cfg.Now()
	var errs []error
	for i := range links {
		l := &links[i]
		if l.Status == db.LinkPending {
			continue
		}
		subs, err := m.store.SubscriptionsOfLink(ctx, l.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		live := false
		for _, s := range subs {
			if s.Status == db.SubActive && s.ExpiresAt.After(now) {
				live = !m.cfg.VerifyOnStart || m.existsInGraph(ctx, s)
			}
		}
		if live {
			continue
		}
		for _, s := range subs {
			_ = m.store.DeleteSubscription(ctx, s.ID)
		}
		m.log.InfoContext(ctx, "reconciling link without a live subscription", slog.Int64("link", l.ID))
		errs = append(errs, m.recreate(ctx, l))
	}
	return errors.Join(errs...)
}

func (m *Manager) existsInGraph(ctx context.Context, s db.GraphSubscription) bool {
	sess, err := m.session(ctx, s.CompanyID)
	if err != nil {
		return true // cannot tell; the renewal loop will find out
	}
	_, err = sess.GetSubscription(ctx, s.ID)
	m.log.DebugContext(ctx, "checked subscription in Graph", slog.String("subscription", s.ID), slog.Any("error", err))
	return outlook.KindOf(err) != outlook.KindNotFound
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
