package links

import (
	"net/mail"
	"regexp"
	"strings"

	"golang.org/x/text/unicode/norm"

	"github.com/tehaishokunin/calsync/apperr"
)

var addressPattern = regexp.MustCompile(`^[a-z0-9.!#$%&'*+/=?^_` + "`" + `{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$`)

// NormalizeAddress turns what a user admin typed as カレンダーID into a
// mailbox address: NFKC folds full-width letters and ＠ typed with a
// Japanese IME, then it is trimmed and lower-cased and validated.
func NormalizeAddress(raw string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(norm.NFKC.String(raw)))
	if s == "" {
		return "", apperr.New(apperr.InvalidInput, "カレンダーID（メールアドレス）を入力してください。", "Enter the calendar ID (the mailbox address).").WithField("calendarId")
	}
	if len(s) > 254 || !addressPattern.MatchString(s) {
		return "", apperr.New(apperr.InvalidInput, "カレンダーID はメールアドレスの形式で入力してください（例: taro@example.co.jp）。",
			"The calendar ID must be a mail address such as taro@example.co.jp.").WithField("calendarId")
	}
	if _, err := mail.ParseAddress(s); err != nil {
		return "", apperr.New(apperr.InvalidInput, "カレンダーID はメールアドレスの形式で入力してください。", "The calendar ID must be a mail address.").WithField("calendarId")
	}
	return s, nil
}
