// Package hostid checks the ids the host app sends (userId, externalId)
// and the text calsync stores and forwards: bounded in length, valid UTF-8
// and free of control characters, so a hostile value is refused with
// INVALID_INPUT naming its field instead of reaching Postgres (which
// refuses NUL) or a log line whole.
package hostid

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tehaishokunin/calsync/apperr"
)

// MaxLen is the longest id, in bytes.
const MaxLen = 200

// Check returns nil for a usable id, else INVALID_INPUT naming field.
func Check(field, id string) error {
	if strings.TrimSpace(id) == "" {
		return apperr.New(apperr.InvalidInput, field+" を指定してください。", field+" is required.").WithField(field)
	}
	if len(id) > MaxLen || !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return apperr.New(apperr.InvalidInput,
			fmt.Sprintf("%s は制御文字を含まない %d バイト以内の文字列にしてください。", field, MaxLen),
			fmt.Sprintf("%s must be at most %d bytes of text without control characters.", field, MaxLen)).WithField(field)
	}
	return nil
}

// HasControl reports whether s holds a control character other than the
// ones allowed (e.g. "\t\r\n" in a body of several lines).
func HasControl(s, allowed string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && !strings.ContainsRune(allowed, r)
	}) >= 0
}
