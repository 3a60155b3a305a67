package db

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// CredentialCheck is the outcome of asking Microsoft about stored
// credentials.
type CredentialCheck struct {
	Status       string
	GrantedRoles []string
	LastError    *string
	At           time.Time
	Verified     bool
}

// RecordCredentialCheck stores a check's outcome. It changes nothing when
// the credentials were replaced since they were read (sealed differs), so a
// slow check never overwrites a newer registration's status.
func (s *Store) RecordCredentialCheck(ctx context.Context, companyID string, sealed []byte, c CredentialCheck) error {
	q := s.db.NewUpdate().Model((*Credential)(nil)).
		Set("status = ?", c.Status).
		Set("last_error = ?", c.LastError).
		Set("checked_at = ?", c.At).
		Set("updated_at = now()").
		Where("company_id = ?", companyID).
		Where("secret_sealed = ?", sealed)
	if c.Verified {
		q = q.Set("verified_at = ?", c.At).Set("granted_roles = ?", pgArray(c.GrantedRoles))
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("recording credential check of company %s: %w", companyID, err)
	}
	return nil
}

// DeleteCredential removes the company's credentials, marks its calendar
// links ERROR with reason, and writes the audit entry, in one transaction.
// It reports whether there was anything to delete.
func (s *Store) DeleteCredential(ctx context.Context, companyID, reason string, audit *AuditEntry) (bool, error) {
	var deleted bool
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*Credential)(nil)).Where("company_id = ?", companyID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("deleting credentials of company %s: %w", companyID, err)
		}
		n, _ := res.RowsAffected()
		if deleted = n > 0; !deleted {
			return nil
		}
		if _, err := tx.NewUpdate().Table("calendar_links").
			Set("status = 'ERROR'").Set("last_error = ?", reason).Set("updated_at = now()").
			Where("company_id = ?", companyID).Where("provider <> 'NONE'").Exec(ctx); err != nil {
			return fmt.Errorf("marking links of company %s: %w", companyID, err)
		}
		if audit != nil {
			if _, err := tx.NewInsert().Model(audit).Exec(ctx); err != nil {
				return fmt.Errorf("writing audit entry: %w", err)
			}
		}
		return nil
	})
	return deleted, err
}

// ClaimCredentialChecks picks up to limit companies whose credentials were
// last checked before olderThan and stamps them as checked now, so another
// replica running the same loop skips them.
func (s *Store) ClaimCredentialChecks(ctx context.Context, olderThan, now time.Time, limit int) ([]Credential, error) {
	var out []Credential
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&out).
			Where("checked_at IS NULL OR checked_at < ?", olderThan).
			OrderExpr("checked_at NULLS FIRST").Limit(int64(limit)).
			For("UPDATE SKIP LOCKED").Scan(ctx); err != nil {
			return fmt.Errorf("claiming credential checks: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		ids := make([]string, len(out))
		for i, c := range out {
			ids[i] = c.CompanyID
		}
		_, err := tx.NewUpdate().Model((*Credential)(nil)).Set("checked_at = ?", now).
			Where("company_id IN (?)", bun.In(ids)).Exec(ctx)
		return err
	})
	return out, err
}

// CredentialsNotUnder lists credentials sealed under another key than keyID.
func (s *Store) CredentialsNotUnder(ctx context.Context, keyID string) ([]Credential, error) {
	var out []Credential
	if err := s.db.NewSelect().Model(&out).Where("secret_key_id <> ?", keyID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("listing credentials to reseal: %w", err)
	}
	return out, nil
}

// Reseal swaps a row's ciphertext when it is still the one that was read.
func (s *Store) Reseal(ctx context.Context, companyID string, oldSealed, sealed []byte, keyID string) (bool, error) {
	res, err := s.db.NewUpdate().Model((*Credential)(nil)).
		Set("secret_sealed = ?", sealed).Set("secret_key_id = ?", keyID).Set("updated_at = now()").
		Where("company_id = ?", companyID).Where("secret_sealed = ?", oldSealed).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("resealing credentials of company %s: %w", companyID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// AuditEntries lists a company's audit log, oldest first.
func (s *Store) AuditEntries(ctx context.Context, companyID string) ([]AuditEntry, error) {
	var out []AuditEntry
	if err := s.db.NewSelect().Model(&out).Where("company_id = ?", companyID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	return out, nil
}

// SetCredentialStatus records a status learned outside a check (e.g. a
// renewal refused by Microsoft).
func (s *Store) SetCredentialStatus(ctx context.Context, companyID, status string, lastError *string) error {
	_, err := s.db.NewUpdate().Model((*Credential)(nil)).Set("status = ?", status).Set("last_error = ?", lastError).
		Set("updated_at = now()").Where("company_id = ?", companyID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("setting credential status of company %s: %w", companyID, err)
	}
	return nil
}

// SecretExpiries lists, per company, when its client secret expires (the
// companies that gave an expiry).
func (s *Store) SecretExpiries(ctx context.Context) (map[string]time.Time, error) {
	var rows []struct {
		CompanyID string    `bun:"company_id"`
		ExpiresAt time.Time `bun:"secret_expires_at"`
	}
	if err := s.db.NewSelect().Model((*Credential)(nil)).Column("company_id", "secret_expires_at").
		Where("secret_expires_at IS NOT NULL").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("reading secret expiries: %w", err)
	}
	out := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		out[r.CompanyID] = r.ExpiresAt
	}
	return out, nil
}
