package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/outlook"
	"github.com/tehaishokunin/calsync/secrets"
)

// Sessions is the side of a company's credentials that every service
// reads (push, sync, subscriptions, links): a Graph session for the
// company's app and a linked user's mailbox, and what a refusal from
// Microsoft means — recorded on the credentials and the links, and turned
// into the one user-facing error each kind of failure gets. The admin side
// (registering, verifying, deleting) is Service, which builds on it.
type Sessions struct {
	store *db.Store
	keys  *secrets.Keyring
	graph *outlook.Client
	log   *slog.Logger
}

// NewSessions builds the read side. graph may be nil where no Graph call is
// made (calsync rotate-key).
func NewSessions(store *db.Store, keys *secrets.Keyring, graph *outlook.Client, log *slog.Logger) *Sessions {
	return &Sessions{store: store, keys: keys, graph: graph, log: log}
}

// Mailbox is a linked user's mailbox and the session that reaches it.
type Mailbox struct {
	Session *outlook.Session
	// ID is the mailbox as Graph paths name it: the resolved user id, or
	// the address until one is resolved.
	ID string
}

// Company is a Graph session for the company's registered app.
func (s *Sessions) Company(ctx context.Context, companyID string) (*outlook.Session, error) {
	creds, err := s.Credentials(ctx, companyID)
	if err != nil {
		return nil, err
	}
	return s.graph.For(creds)
}

// Mailbox is the session for l's company and l's mailbox.
func (s *Sessions) Mailbox(ctx context.Context, l *db.CalendarLink) (Mailbox, error) {
	c, err := s.store.Credential(ctx, l.CompanyID)
	if err != nil {
		return Mailbox{}, err
	}
	return s.MailboxWith(c, l)
}

// MailboxWith is Mailbox for credentials the caller read itself (a push
// reads the link, the credentials and the entry in one statement); nil
// credentials are ErrNotRegistered.
func (s *Sessions) MailboxWith(c *db.Credential, l *db.CalendarLink) (Mailbox, error) {
	creds, err := s.Open(c)
	if err != nil {
		return Mailbox{}, err
	}
	sess, err := s.graph.For(creds)
	if err != nil {
		return Mailbox{}, err
	}
	id := deref(l.GraphUserID)
	if id == "" {
		id = deref(l.CalendarID)
	}
	return Mailbox{Session: sess, ID: id}, nil
}

// Credentials opens the company's stored credentials.
func (s *Sessions) Credentials(ctx context.Context, companyID string) (outlook.Credentials, error) {
	c, err := s.store.Credential(ctx, companyID)
	if err != nil {
		return outlook.Credentials{}, err
	}
	return s.Open(c)
}

// Open opens a stored credentials row; nil is ErrNotRegistered.
func (s *Sessions) Open(c *db.Credential) (outlook.Credentials, error) {
	if c == nil {
		return outlook.Credentials{}, ErrNotRegistered
	}
	plain, err := s.keys.Open(c.SecretSealed, c.SecretKeyID, c.CompanyID)
	if err != nil {
		hint := "CALSYNC_ENCRYPTION_KEY / CALSYNC_ENCRYPTION_OLD_KEYS を確認してください。"
		if errors.Is(err, secrets.ErrUnknownKey) {
			hint = "鍵 " + c.SecretKeyID + " を CALSYNC_ENCRYPTION_OLD_KEYS に追加してください。"
		}
		return outlook.Credentials{}, errUnreadable.WithHint(hint, "Check CALSYNC_ENCRYPTION_KEY / CALSYNC_ENCRYPTION_OLD_KEYS (key "+c.SecretKeyID+").").Wrap(err)
	}
	return outlook.Credentials{TenantID: c.TenantID, ClientID: c.ClientID, ClientSecret: string(plain)}, nil
}

// ReportRejected records that Microsoft refused the company's stored
// credentials during background work (renewal, sync): the credentials get
// the matching status and every link of the company shows the reason. It
// reports whether err was such a refusal.
func (s *Sessions) ReportRejected(ctx context.Context, companyID string, err error) bool {
	switch outlook.KindOf(err) {
	case outlook.KindInvalidSecret, outlook.KindSecretExpired, outlook.KindTenantNotFound, outlook.KindAppNotFound, outlook.KindAuthFailed, outlook.KindNoPermissions:
	default:
		return false
	}
	status, rej := rejection(err)
	msg := rej.Message.JA + " " + rej.Hint.JA + " / " + rej.Message.EN + " " + rej.Hint.EN
	if e := s.store.SetCredentialStatus(ctx, companyID, string(status), &msg); e != nil {
		s.log.WarnContext(ctx, "recording credential rejection failed", slog.String("company", companyID), slog.String("error", e.Error()))
	}
	if e := s.store.SetCompanyLinksStatus(ctx, companyID, db.LinkError, &msg); e != nil {
		s.log.WarnContext(ctx, "marking links failed", slog.String("company", companyID), slog.String("error", e.Error()))
	}
	s.log.WarnContext(ctx, "Microsoft rejected stored credentials", slog.String("company", companyID), slog.String("status", string(status)))
	return true
}

// UserError is the one mapping from a failed Graph call to what the caller
// is told: a refusal of the credentials is recorded (ReportRejected) and
// answered CONSENT_MISSING or CREDENTIALS_REJECTED; the mailbox's own
// failures name the address and the calendarId field when address is
// given (linking), and speak of "the mailbox" otherwise (a push). Errors
// already coded pass through.
func (s *Sessions) UserError(ctx context.Context, companyID string, err error, address string) error {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	if s.ReportRejected(ctx, companyID, err) {
		if outlook.KindOf(err) == outlook.KindNoPermissions {
			return apperr.New(apperr.ConsentMissing, "アプリに Microsoft Graph のアプリケーションの許可が 1 つも付与されていません（管理者の同意がありません）。",
				"The app holds no Microsoft Graph application permission (no admin consent).").
				WithHint("Entra ID 管理センターの「API のアクセス許可」で Calendars.ReadWrite（アプリケーションの許可）に管理者の同意を与えてください。",
					"In the Entra admin center, under API permissions, grant admin consent for Calendars.ReadWrite (Application).").Wrap(err)
		}
		return apperr.New(apperr.CredentialsRejected, "登録されている認証情報が Microsoft に拒否されました。企業設定 → カレンダー認証設定 を確認してください。",
			"Microsoft rejected the registered credentials; check company settings → calendar authentication.").Wrap(err)
	}
	// The mailbox's name in the messages: " " and the address, when given.
	named := ""
	if address != "" {
		named = " " + address
	}
	mailboxJA, mailboxEN := "メールボックス"+named, "The mailbox"+named
	field := func(e *apperr.Error) *apperr.Error {
		if address != "" {
			return e.WithField("calendarId")
		}
		return e
	}
	var oe *outlook.Error
	switch outlook.KindOf(err) {
	case outlook.KindThrottled:
		retry := 60
		if errors.As(err, &oe) && oe.RetryAfter > 0 {
			retry = int(oe.RetryAfter.Seconds())
		}
		return apperr.New(apperr.Throttled, "Microsoft 365 が混み合っています。しばらくしてから再度お試しください。", "Microsoft 365 is throttling this mailbox; try again later.").
			WithExtra("retryAfterSeconds", retry).
			WithHint(fmt.Sprintf("%d 秒以上待ってから再度お試しください。", retry), fmt.Sprintf("Try again after at least %d seconds.", retry)).Wrap(err)
	case outlook.KindNotFound:
		return field(apperr.New(apperr.MailboxNotFound,
			mailboxJA+" が見つかりません。カレンダーID（メールアドレス）を確認してください。",
			mailboxEN+" was not found; check the calendar ID (mail address).")).
			WithHint("このテナントのユーザーの職場のメールアドレスを指定してください。ゲスト ユーザーや他社のアドレスには、このテナントのメールボックスがありません。",
				"Use the work address of a user in this tenant; guests and other companies' addresses have no mailbox here.").Wrap(err)
	case outlook.KindMailboxNotEnabled:
		return field(apperr.New(apperr.MailboxNotEnabled,
			mailboxJA+" は Exchange Online のメールボックスではないため、予定表を連携できません。",
			mailboxEN+" is not an Exchange Online mailbox, so its calendar cannot be used.")).
			WithHint("Exchange Online を含むライセンス（例: Microsoft 365 F3、Business Basic 以上、Exchange Online Kiosk）をこのユーザーに割り当ててください。Exchange を含まない F1 などのライセンス、ゲスト、オンプレミスのメールボックスは使えません。",
				"Assign the user a licence that includes Exchange Online (e.g. Microsoft 365 F3, Business Basic or higher, Exchange Online Kiosk). Licences without Exchange (such as some F1 plans), guests and on-premises mailboxes cannot be used.").Wrap(err)
	case outlook.KindAccessDenied:
		return field(apperr.New(apperr.MailboxAccessDenied,
			mailboxJA+" へのアクセスが拒否されました。",
			"Access to the mailbox"+named+" was denied.")).
			WithHint("Entra ID で Calendars.ReadWrite に管理者の同意が与えられているか、アプリケーション アクセス ポリシーでこのメールボックスが許可されているか確認してください。",
				"Check that Calendars.ReadWrite has admin consent and that no application access policy excludes this mailbox.").Wrap(err)
	case outlook.KindMailboxNotReady:
		return apperr.New(apperr.Unavailable, mailboxJA+" は準備中です。しばらくしてから再度お試しください。",
			mailboxEN+" is still being provisioned; try again later.").Wrap(err)
	case outlook.KindBadRequest:
		if errors.As(err, &oe) {
			return apperr.New(apperr.InvalidInput, "Outlook が要求を受け付けませんでした。（"+oe.Message+"）", "Outlook refused the request: "+oe.Message).Wrap(err)
		}
	}
	return apperr.New(apperr.Unavailable, "Microsoft 365 に接続できませんでした。しばらくしてから再度お試しください。", "Microsoft 365 could not be reached; try again later.").Wrap(err)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
