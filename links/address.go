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
	if domain := s[strings.LastIndexByte(s, '@')+1:]; personalDomains[domain] {
		return "", apperr.New(apperr.InvalidInput,
			domain+" は個人用のアドレスです。Office 365 の予定表には、会社の Microsoft 365 の職場アドレスを指定してください。",
			domain+" is a personal address; an Office 365 calendar needs the user's work address in the company's Microsoft 365 tenant.").
			WithField("calendarId").
			WithHint("個人の Microsoft アカウント（outlook.com、hotmail など）や携帯・フリーメールのアドレスは、会社のアプリから予定表を操作できません。",
				"Personal Microsoft accounts (outlook.com, hotmail, ...) and mobile-carrier or free mail addresses cannot be reached by the company's app.")
	}
	return s, nil
}

// personalDomains are consumer mail domains: Microsoft's personal accounts
// (which an organisation's app cannot reach with application permissions)
// and the free and mobile-carrier mail field staff in Japan often type.
var personalDomains = map[string]bool{
	"outlook.com": true, "outlook.jp": true, "hotmail.com": true, "hotmail.co.jp": true, "live.com": true, "live.jp": true,
	"msn.com": true, "passport.com": true, "windowslive.com": true,
	"gmail.com": true, "googlemail.com": true, "icloud.com": true, "me.com": true, "yahoo.co.jp": true, "yahoo.com": true, "ymail.ne.jp": true,
	"docomo.ne.jp": true, "ezweb.ne.jp": true, "au.com": true, "softbank.ne.jp": true, "i.softbank.jp": true, "ymobile.ne.jp": true, "rakuten.jp": true,
}
