package cursor_test

import (
	"errors"
	"testing"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/internal/cursor"
)

func TestCursors(t *testing.T) {
	c := cursor.Encode("chg", 42)
	if n, err := cursor.Decode("chg", c); err != nil || n != 42 {
		t.Fatalf("round trip: %d %v", n, err)
	}
	for _, bad := range []string{cursor.Encode("link", 42), "not base64!", cursor.Encode("chg", -1), ""} {
		_, err := cursor.Decode("chg", bad)
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.InvalidInput || ae.Field != "after" {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
