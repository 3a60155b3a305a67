package db

import (
	"time"

	"github.com/uptrace/bun"
)

// Credential is a company's Entra ID app registration. SecretSealed is the
// AES-256-GCM ciphertext of the client secret under the key SecretKeyID; the
// plain secret never touches the database.
type Credential struct {
	bun.BaseModel `bun:"table:credentials"`

	CompanyID    string     `bun:"company_id,pk"`
	TenantID     string     `bun:"tenant_id,notnull"`
	ClientID     string     `bun:"client_id,notnull"`
	SecretSealed []byte     `bun:"secret_sealed,notnull"`
	SecretKeyID  string     `bun:"secret_key_id,notnull"`
	SecretHint   string     `bun:"secret_hint,notnull"`
	Status       string     `bun:"status,notnull"`
	GrantedRoles []string   `bun:"granted_roles,array,notnull"`
	LastError    *string    `bun:"last_error"`
	VerifiedAt   *time.Time `bun:"verified_at"`
	CheckedAt    *time.Time `bun:"checked_at"`
	RegisteredBy string     `bun:"registered_by,notnull"`
	RegisteredAt time.Time  `bun:"registered_at,notnull,default:current_timestamp"`
	UpdatedAt    time.Time  `bun:"updated_at,notnull,default:current_timestamp"`
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
