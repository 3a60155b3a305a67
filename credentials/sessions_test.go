package credentials_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/outlook"
)

// TestUserErrorIsTheOneMapping: each kind of Graph failure gets one coded,
// bilingual answer wherever it happens; the mailbox's failures name the
// address and the calendarId field when one is given (linking) and not
// otherwise (a push); a refusal of the credentials is also recorded on them.
func TestUserErrorIsTheOneMapping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, err := b.svc.Register(ctx, "acme", "admin-1", file(tenantA, appA, secretA)); err != nil {
		t.Fatal(err)
	}
	const addr = "taro@a.onmicrosoft.com"
	for _, tc := range []struct {
		kind     outlook.Kind
		code     apperr.Code
		mailbox  bool // names the mailbox, with field calendarId, when an address is given
		named    bool // names the mailbox only
		recorded credentials.Status
	}{
		{kind: outlook.KindNotFound, code: apperr.MailboxNotFound, mailbox: true},
		{kind: outlook.KindMailboxNotEnabled, code: apperr.MailboxNotEnabled, mailbox: true},
		{kind: outlook.KindAccessDenied, code: apperr.MailboxAccessDenied, mailbox: true},
		{kind: outlook.KindMailboxNotReady, code: apperr.Unavailable, named: true},
		{kind: outlook.KindThrottled, code: apperr.Throttled},
		{kind: outlook.KindBadRequest, code: apperr.InvalidInput},
		{kind: outlook.KindUnavailable, code: apperr.Unavailable},
		{kind: outlook.KindInvalidSecret, code: apperr.CredentialsRejected, recorded: credentials.StatusInvalidSecret},
		{kind: outlook.KindNoPermissions, code: apperr.ConsentMissing, recorded: credentials.StatusConsentMissing},
	} {
		for _, address := range []string{addr, ""} {
			graphErr := &outlook.Error{Op: "test", Kind: tc.kind, Message: "refused", RetryAfter: 7 * time.Second}
			err := b.sessions.UserError(ctx, "acme", graphErr, address)
			ae := apperr.As(err)
			if ae == nil || ae.Code != tc.code {
				t.Errorf("%s (address %q): %v, want %s", tc.kind, address, err, tc.code)
				continue
			}
			if !errors.Is(err, graphErr) {
				t.Errorf("%s: the Graph error is not wrapped", tc.kind)
			}
			if ae.Message.JA == "" || ae.Message.EN == "" {
				t.Errorf("%s: message not in both languages: %+v", tc.kind, ae.Message)
			}
			want := tc.mailbox && address != ""
			if named := strings.Contains(ae.Message.JA, addr) && strings.Contains(ae.Message.EN, addr); named != (want || tc.named && address != "") {
				t.Errorf("%s (address %q): names the mailbox: %v, want %v (%+v)", tc.kind, address, named, want, ae.Message)
			}
			if field := ae.Field == "calendarId"; field != want {
				t.Errorf("%s (address %q): field calendarId: %v, want %v", tc.kind, address, field, want)
			}
			if tc.kind == outlook.KindThrottled && ae.Extra["retryAfterSeconds"] != 7 {
				t.Errorf("throttled: retryAfterSeconds %v, want 7", ae.Extra["retryAfterSeconds"])
			}
			s, _ := b.svc.Settings(ctx, "acme")
			if tc.recorded != "" && s.Status != tc.recorded {
				t.Errorf("%s: credentials status %s, want %s recorded", tc.kind, s.Status, tc.recorded)
			}
			// The mailbox's own failures come first in the table: until
			// the first refusal the credentials stay VERIFIED.
			if tc.recorded == "" && s.Status != credentials.StatusVerified {
				t.Errorf("%s, not a refusal of the credentials, changed their status to %s", tc.kind, s.Status)
			}
		}
	}
	coded := apperr.New(apperr.NotLinked, "未連携", "not linked")
	if err := b.sessions.UserError(ctx, "acme", coded, addr); err != coded {
		t.Errorf("an already coded error was remapped: %v", err)
	}
}
