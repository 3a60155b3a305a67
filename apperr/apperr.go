// Package apperr defines the errors calsync shows to its callers: a stable
// machine-readable code, a message in Japanese and English, and optionally the
// input field at fault and a hint. Every edge (GraphQL, webhooks, CLI) renders
// these the same way, so the host app can switch on the code and show the
// message to its users as is.
package apperr

import (
	"errors"
	"fmt"
)

// Code is the stable identifier the host app switches on; it never changes
// once published in ../shared/API.md.
type Code string

// The codes calsync answers with.
const (
	Unauthenticated      Code = "UNAUTHENTICATED"
	Forbidden            Code = "FORBIDDEN"
	InvalidInput         Code = "INVALID_INPUT"
	AuthFileInvalid      Code = "AUTH_FILE_INVALID"
	CredentialsRejected  Code = "CREDENTIALS_REJECTED"
	ConsentMissing       Code = "CONSENT_MISSING"
	MailboxNotFound      Code = "MAILBOX_NOT_FOUND"
	MailboxNotEnabled    Code = "MAILBOX_NOT_ENABLED"
	MailboxAccessDenied  Code = "MAILBOX_ACCESS_DENIED"
	NotLinked            Code = "NOT_LINKED"
	NotFound             Code = "NOT_FOUND"
	Conflict             Code = "CONFLICT"
	Throttled            Code = "THROTTLED"
	Unavailable          Code = "UNAVAILABLE"
	Internal             Code = "INTERNAL"
	RequestTooLarge      Code = "REQUEST_TOO_LARGE"
	CredentialsMissing   Code = "CREDENTIALS_MISSING"
	EncryptionKeyMissing Code = "ENCRYPTION_KEY_MISSING"
	QueryTooComplex      Code = "QUERY_TOO_COMPLEX"
	CursorExpired        Code = "CURSOR_EXPIRED"
)

// Text is one sentence in both languages calsync speaks.
type Text struct {
	JA string
	EN string
}

// In returns the text in lang, falling back to Japanese, the host app's
// primary language.
func (t Text) In(lang Lang) string {
	if lang == English && t.EN != "" {
		return t.EN
	}
	if t.JA == "" {
		return t.EN
	}
	return t.JA
}

// Error is a user-facing error. Cause is kept for logs and errors.Is/As but is
// never shown to the caller, so it must not be relied on to carry user text.
type Error struct {
	Code    Code
	Message Text
	Field   string
	Hint    *Text
	// Extra holds additional extensions (e.g. a credential status) that the
	// host may switch on. Values must be safe to show: never a secret.
	Extra map[string]any
	Cause error
}

// New returns an error with a code and a bilingual message.
func New(code Code, ja, en string) *Error {
	return &Error{Code: code, Message: Text{JA: ja, EN: en}}
}

// WithField names the input field at fault.
func (e *Error) WithField(field string) *Error {
	c := *e
	c.Field = field
	return &c
}

// WithHint adds what the user can do about it.
func (e *Error) WithHint(ja, en string) *Error {
	c := *e
	c.Hint = &Text{JA: ja, EN: en}
	return &c
}

// WithExtra adds one safe extension value.
func (e *Error) WithExtra(key string, value any) *Error {
	c := *e
	c.Extra = make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		c.Extra[k] = v
	}
	c.Extra[key] = value
	return &c
}

// Wrap keeps the underlying cause for logs and errors.Is.
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// Error implements error with the English text, for logs.
func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message.EN
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Unwrap exposes the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is matches another *Error by code, so errors.Is(err, apperr.New(apperr.Forbidden, "", ""))
// and the package-level helpers work.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// As returns the first *Error in err's chain, or an INTERNAL error that hides
// err's text from the caller (it may hold anything, even a secret).
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{
		Code:    Internal,
		Message: Text{JA: "内部エラーが発生しました。しばらくしてから再度お試しください。", EN: "An internal error occurred. Please try again later."},
		Cause:   err,
	}
}

// Errorf is a convenience for an INVALID_INPUT error on a field.
func Errorf(field string, ja, enFormat string, args ...any) *Error {
	return New(InvalidInput, ja, fmt.Sprintf(enFormat, args...)).WithField(field)
}
