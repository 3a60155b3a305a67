// Package cursor makes the opaque Relay-style cursors of calsync's
// connections: a kind and a position, base64url-encoded so hosts treat
// them as tokens, and a cursor of one kind is refused by another.
package cursor

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/tehaishokunin/calsync/apperr"
)

// Encode renders position n of kind (e.g. "chg", "link").
func Encode(kind string, n int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(n, 10)))
}

// Decode reads a cursor of kind, or answers INVALID_INPUT on field "after".
func Decode(kind, s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil && strings.HasPrefix(string(b), kind+":") {
		if n, err := strconv.ParseInt(strings.TrimPrefix(string(b), kind+":"), 10, 64); err == nil && n >= 0 {
			return n, nil
		}
	}
	return 0, apperr.New(apperr.InvalidInput, "カーソルが正しくありません。", "The cursor is not valid.").WithField("after")
}
