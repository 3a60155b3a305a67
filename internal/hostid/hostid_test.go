package hostid

import (
	"errors"
	"strings"
	"testing"

	"github.com/tehaishokunin/calsync/apperr"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"u1", "ユーザー-42", strings.Repeat("x", MaxLen)} {
		if err := Check("userId", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "  ", "a\x00b", "a\nb", "\u0085", strings.Repeat("x", MaxLen+1), strings.Repeat("x", 500_000), "\xff"} {
		err := Check("userId", bad)
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.InvalidInput || ae.Field != "userId" {
			t.Errorf("%.20q: %v", bad, err)
		}
		if err != nil && len(err.Error()) > 300 {
			t.Errorf("the error quotes the id: %d bytes", len(err.Error()))
		}
	}
	if !HasControl("a\x00", "\t\r\n") || HasControl("a\tb\r\nc", "\t\r\n") || !HasControl("a\tb", "") {
		t.Error("HasControl")
	}
}
