package apperr

import (
	"errors"
	"fmt"
	"testing"
)

func TestParseAcceptLanguage(t *testing.T) {
	cases := map[string]Lang{
		"":                        Japanese,
		"en":                      English,
		"en-US,en;q=0.9":          English,
		"ja,en;q=0.5":             Japanese,
		"ja-JP":                   Japanese,
		"fr":                      Japanese,
		"fr, en;q=0.8":            English,
		"de-DE,de;q=0.9,ja;q=0.1": Japanese,
		"!!!":                     Japanese,
	}
	for h, want := range cases {
		if got := ParseAcceptLanguage(h); got != want {
			t.Errorf("ParseAcceptLanguage(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestErrorChain(t *testing.T) {
	base := New(Forbidden, "権限がありません", "forbidden").WithField("userId")
	wrapped := fmt.Errorf("doing thing: %w", base)
	if CodeOf(wrapped) != Forbidden {
		t.Fatalf("CodeOf = %s", CodeOf(wrapped))
	}
	if !errors.Is(wrapped, New(Forbidden, "", "")) {
		t.Fatal("errors.Is by code failed")
	}
	if errors.Is(wrapped, New(Conflict, "", "")) {
		t.Fatal("errors.Is matched another code")
	}
	if got := As(wrapped).Field; got != "userId" {
		t.Fatalf("field = %q", got)
	}
	secret := errors.New("secret=hunter2")
	in := As(secret)
	if in.Code != Internal || in.Message.EN == secret.Error() {
		t.Fatalf("internal error leaks cause: %+v", in)
	}
	if !errors.Is(in, secret) {
		t.Fatal("internal error lost its cause for logs")
	}
	if base.Message.In(English) != "forbidden" || base.Message.In(Japanese) != "権限がありません" {
		t.Fatal("language selection broken")
	}
}
