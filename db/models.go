package db

import (
	"encoding/json"
	"time"

	"github.com/uptrace/bun"
)

// Credential is a company's Entra ID app registration. SecretSealed is the
// AES-256-GCM ciphertext of the client secret under the key SecretKeyID; the
// plain secret never touches the database.
type Credential struct {
	bun.BaseModel `bun:"table:credentials"`

	CompanyID    string `bun:"company_id,pk"`
	TenantID     string `bun:"tenant_id,notnull"`
	ClientID     string `bun:"client_id,notnull"`
	SecretSealed []byte `bun:"secret_sealed,notnull"`
	SecretKeyID  string `bun:"secret_key_id,notnull"`
	SecretHint   string `bun:"secret_hint,notnull"`
	// SecretExpiresAt is when the secret expires, when the admin said.
	SecretExpiresAt *time.Time `bun:"secret_expires_at"`
	Status          string     `bun:"status,notnull"`
	GrantedRoles    []string   `bun:"granted_roles,array,notnull"`
	LastError       *string    `bun:"last_error"`
	VerifiedAt      *time.Time `bun:"verified_at"`
	CheckedAt       *time.Time `bun:"checked_at"`
	RegisteredBy    string     `bun:"registered_by,notnull"`
	RegisteredAt    time.Time  `bun:"registered_at,notnull,default:current_timestamp"`
	UpdatedAt       time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}

// AuditEntry records who changed what, never a secret.
type AuditEntry struct {
	bun.BaseModel `bun:"table:audit_log"`

	ID        int64          `bun:"id,pk,autoincrement"`
	CompanyID string         `bun:"company_id,notnull"`
	Actor     string         `bun:"actor,notnull"`
	Action    string         `bun:"action,notnull"`
	Detail    map[string]any `bun:"detail,type:jsonb,notnull"`
	At        time.Time      `bun:"at,notnull,default:current_timestamp"`
}

// CalendarLink ties a host user to a mailbox.
type CalendarLink struct {
	bun.BaseModel `bun:"table:calendar_links"`

	ID           int64      `bun:"id,pk,autoincrement"`
	CompanyID    string     `bun:"company_id,notnull"`
	UserID       string     `bun:"user_id,notnull"`
	Provider     string     `bun:"provider,notnull"`
	CalendarID   *string    `bun:"calendar_id"`
	GraphUserID  *string    `bun:"graph_user_id"`
	Status       string     `bun:"status,notnull"`
	LastError    *string    `bun:"last_error"`
	LastSyncedAt *time.Time `bun:"last_synced_at"`
	// NextAttemptAt and Attempts: a PENDING link waiting for its mailbox
	// is activated again then (nil: not waiting).
	NextAttemptAt *time.Time `bun:"next_attempt_at"`
	Attempts      int        `bun:"attempts,notnull"`
	// NextPollAt is when the next resync round is due (see ClaimDuePolls).
	NextPollAt *time.Time `bun:"next_poll_at"`
	CreatedAt  time.Time  `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt  time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
}

// GraphSubscription is a live Graph subscription on a link's mailbox.
type GraphSubscription struct {
	bun.BaseModel `bun:"table:graph_subscriptions"`

	ID              string    `bun:"id,pk"`
	LinkID          int64     `bun:"link_id,notnull"`
	CompanyID       string    `bun:"company_id,notnull"`
	Resource        string    `bun:"resource,notnull"`
	ExpiresAt       time.Time `bun:"expires_at,notnull"`
	RenewAt         time.Time `bun:"renew_at,notnull"`
	ClientState     string    `bun:"client_state,notnull"`
	RenewalFailures int       `bun:"renewal_failures,notnull"`
	Status          string    `bun:"status,notnull"`
	LastError       *string   `bun:"last_error"`
	CreatedAt       time.Time `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt       time.Time `bun:"updated_at,notnull,default:current_timestamp"`
}

// DeltaState is a link's saved calendarView delta link and its window.
type DeltaState struct {
	bun.BaseModel `bun:"table:delta_state"`

	LinkID      int64     `bun:"link_id,pk"`
	DeltaLink   *string   `bun:"delta_link"`
	WindowStart time.Time `bun:"window_start,notnull"`
	WindowEnd   time.Time `bun:"window_end,notnull"`
	UpdatedAt   time.Time `bun:"updated_at,notnull,default:current_timestamp"`
}

// InboxItem is one accepted Graph notification awaiting processing.
type InboxItem struct {
	bun.BaseModel `bun:"table:inbox"`

	ID             int64      `bun:"id,pk,autoincrement"`
	Kind           string     `bun:"kind,notnull"` // change | lifecycle
	SubscriptionID string     `bun:"subscription_id,notnull"`
	LinkID         *int64     `bun:"link_id"`
	ChangeType     *string    `bun:"change_type"`
	LifecycleEvent *string    `bun:"lifecycle_event"`
	Resource       *string    `bun:"resource"`
	ReceivedAt     time.Time  `bun:"received_at,notnull,default:current_timestamp"`
	Attempts       int        `bun:"attempts,notnull"`
	NextAttemptAt  time.Time  `bun:"next_attempt_at,notnull,default:current_timestamp"`
	ProcessedAt    *time.Time `bun:"processed_at"`
	LastError      *string    `bun:"last_error"`
	// Traceparent is the notification POST's span (W3C), "" untraced.
	Traceparent string `bun:"traceparent,nullzero"`
	// EventID and ChangeKey are the event and version a change
	// notification names (resourceData id and @odata.etag), "" when not.
	EventID   string `bun:"event_id,nullzero"`
	ChangeKey string `bun:"change_key,nullzero"`
}

// EventLink maps a host schedule entry (or an Outlook-made event) to its
// Outlook event, with what calsync last wrote and last saw.
type EventLink struct {
	bun.BaseModel `bun:"table:event_links"`

	ID               int64           `bun:"id,pk,autoincrement"`
	CompanyID        string          `bun:"company_id,notnull"`
	UserID           string          `bun:"user_id,notnull"`
	LinkID           *int64          `bun:"link_id"`
	ExternalID       *string         `bun:"external_id"`
	OutlookEventID   string          `bun:"outlook_event_id,notnull"`
	ICalUID          *string         `bun:"ical_uid"`
	WrittenChangeKey *string         `bun:"written_change_key"`
	KnownChangeKey   *string         `bun:"known_change_key"`
	LastKnown        json.RawMessage `bun:"last_known,type:jsonb"`
	Deleted          bool            `bun:"deleted,notnull"`
	CreatedAt        time.Time       `bun:"created_at,notnull,default:current_timestamp"`
	UpdatedAt        time.Time       `bun:"updated_at,notnull,default:current_timestamp"`
}

// Change is one Outlook-side edit in the feed the host reads.
type Change struct {
	bun.BaseModel `bun:"table:changes"`

	Cursor         int64           `bun:"cursor,pk,autoincrement"`
	CompanyID      string          `bun:"company_id,notnull"`
	UserID         string          `bun:"user_id,notnull"`
	LinkID         *int64          `bun:"link_id"`
	ExternalID     *string         `bun:"external_id"`
	OutlookEventID string          `bun:"outlook_event_id,notnull"`
	ChangeType     string          `bun:"change_type,notnull"`
	ChangedFields  []string        `bun:"changed_fields,array,notnull"`
	Event          json.RawMessage `bun:"event,type:jsonb"`
	OccurredAt     time.Time       `bun:"occurred_at,notnull,default:current_timestamp"`
	// Traceparent is the span that appended the change (W3C), "" untraced.
	Traceparent string `bun:"traceparent,nullzero"`
}
