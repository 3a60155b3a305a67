package credentials

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/db"
)

// ExpiryThresholds are the days ahead of a client secret's expiry at which
// the host is warned (credentials.expiring on its webhook).
var ExpiryThresholds = []int{30, 14, 7, 1}

// NoExpiryHint is what the host shows when no expiry was given.
var NoExpiryHint = apperr.Text{
	JA: "クライアントシークレットの有効期限が登録されていません。authOfficeCalendar.json に \"client_secret_expires_at\": \"2027/11/25\" のように（Entra 管理センターの「証明書とシークレット」の「有効期限」の日付を）追加して登録し直すと、期限の 30・14・7・1 日前に通知します。",
	EN: "No expiry is registered for the client secret. Add \"client_secret_expires_at\": \"2027/11/25\" (the Expires date under Certificates & secrets in the Entra admin center) to authOfficeCalendar.json and register it again, and calsync warns 30, 14, 7 and 1 days ahead.",
}

// ExpiringEvent is the host webhook event type of those warnings.
const ExpiringEvent = "credentials.expiring"

// WarnExpiring queues a credentials.expiring event for every company whose
// secret now expires within a threshold it was not warned of: one event,
// for the nearest threshold reached (a secret registered 5 days before it
// expires gets the 7-day warning, not three at once); the farther ones are
// recorded as passed. Each warning is sent once per secret, across
// replicas and restarts; a new secret starts over. It returns how many
// events were queued.
func (s *Service) WarnExpiring(ctx context.Context, now time.Time) (int, error) {
	expiries, err := s.store.SecretExpiries(ctx)
	if err != nil {
		return 0, err
	}
	queued := 0
	for company, at := range expiries {
		left := at.Sub(now)
		if left <= 0 {
			continue // expired: the credentials check reports SECRET_EXPIRED
		}
		var reached []int
		emit := 0
		for _, days := range ExpiryThresholds {
			if left <= time.Duration(days)*24*time.Hour {
				reached = append(reached, days)
				if emit == 0 || days < emit {
					emit = days
				}
			}
		}
		if len(reached) == 0 {
			continue
		}
		days := daysLeft(at, now)
		data, _ := json.Marshal(map[string]any{"companyId": company, "expiresAt": at.UTC(), "daysLeft": days, "threshold": emit})
		ok, err := s.store.WarnSecretExpiry(ctx, company, at, reached, emit, &db.HostEvent{Type: ExpiringEvent, CompanyID: company, Data: data})
		if err != nil {
			return queued, err
		}
		if ok {
			queued++
			s.log.InfoContext(ctx, "client secret expiring: host warned", slog.String("company", company),
				slog.Int("days_left", days), slog.Int("threshold", emit))
		}
	}
	return queued, nil
}
