package cursor_test

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/internal/cursor"
)

func TestCursors(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	c := cursor.NewCodec(key)
	s := c.Encode("chg", "acme", 42)
	if n, err := c.Decode("chg", "acme", s); err != nil || n != 42 {
		t.Fatalf("round trip: %d %v", n, err)
	}
	// Opaque: the position cannot be read, and nearby positions do not
	// share a prefix.
	raw, _ := base64.RawURLEncoding.DecodeString(s)
	if strings.Contains(string(raw), "42") || strings.Contains(s, base64.RawURLEncoding.EncodeToString([]byte("chg:"))) {
		t.Errorf("cursor shows its position: %q", s)
	}
	if a, b := c.Encode("chg", "acme", 1000), c.Encode("chg", "acme", 1001); a[:8] == b[:8] {
		t.Errorf("neighbouring cursors share a prefix: %s %s", a, b)
	}
	// The unsealed form issued before is still read (a host upgrading
	// mid-feed goes on where it was), for its own kind only.
	old := base64.RawURLEncoding.EncodeToString([]byte("chg:" + strconv.Itoa(42)))
	if n, err := c.Decode("chg", "acme", old); err != nil || n != 42 {
		t.Errorf("legacy cursor: %d %v", n, err)
	}
	bad := []string{
		base64.RawURLEncoding.EncodeToString([]byte("link:42")), base64.RawURLEncoding.EncodeToString([]byte("chg:-1")),
		c.Encode("chg", "globex", 42), // another company's
		c.Encode("link", "acme", 42),  // another kind
		cursor.NewCodec([]byte("another key another key another k")).Encode("chg", "acme", 42),
		"not base64!", "", s[:len(s)-1] + "A",
	}
	for _, b := range bad {
		_, err := c.Decode("chg", "acme", b)
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.InvalidInput || ae.Field != "after" {
			t.Errorf("%q: %v", b, err)
		}
	}
	// After a key rotation, cursors sealed with the old key still open.
	rotated := cursor.NewCodec([]byte("the new key the new key the new k"), key)
	if n, err := rotated.Decode("chg", "acme", s); err != nil || n != 42 {
		t.Errorf("old cursor after rotation: %d %v", n, err)
	}
}
