package apperr

import (
	"context"

	"golang.org/x/text/language"
)

// Lang is a language calsync answers in.
type Lang int

// The languages calsync speaks. Japanese is the zero value: it is the
// default when Accept-Language is absent or names nothing we speak.
const (
	Japanese Lang = iota
	English
)

var matcher = language.NewMatcher([]language.Tag{language.Japanese, language.English})

// ParseAcceptLanguage picks the caller's language from an Accept-Language
// header value.
func ParseAcceptLanguage(header string) Lang {
	if header == "" {
		return Japanese
	}
	tags, _, err := language.ParseAcceptLanguage(header)
	if err != nil || len(tags) == 0 {
		return Japanese
	}
	_, idx, conf := matcher.Match(tags...)
	if conf == language.No {
		return Japanese
	}
	if idx == 1 {
		return English
	}
	return Japanese
}

type langKey struct{}

// WithLang stores the caller's language in ctx.
func WithLang(ctx context.Context, l Lang) context.Context {
	return context.WithValue(ctx, langKey{}, l)
}

// LangFrom returns the caller's language, Japanese when none was set.
func LangFrom(ctx context.Context) Lang {
	l, _ := ctx.Value(langKey{}).(Lang)
	return l
}
