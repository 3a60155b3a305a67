package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// sizedPOST refuses a JSON POST whose query text is over QueryLimits.Bytes
// before gqlgen's POST transport decodes the body. documentLimits refuses
// the same document, but only after encoding/json has read the whole body
// twice and copied the query out: for a caller's 1 MB body (the body limit
// with a token) about 15 ms of CPU per request (bench/profiles.md), against
// a fraction of a millisecond for the walk in rawQuery. The answer is
// gqlgen's own — same status, media type and QUERY_TOO_COMPLEX error as
// documentLimits gives — because the request goes on through the transport,
// with an empty body and an executor that refuses it.
type sizedPOST struct {
	graphql.Transport
	limits QueryLimits
}

func (s sizedPOST) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if b, ok := r.Body.(*bufferedBody); ok && s.limits.Bytes > 0 {
		if raw, found := rawQuery(b.b); found {
			if n := decodedLen(raw); n > s.limits.Bytes {
				r.Body = io.NopCloser(bytes.NewReader([]byte("{}")))
				exec = refuse{GraphExecutor: exec, err: gqlerror.Wrap(s.limits.tooLong(n))}
			}
		}
	}
	s.Transport.Do(w, r, exec)
}

// refuse answers every operation with err.
type refuse struct {
	graphql.GraphExecutor
	err *gqlerror.Error
}

func (f refuse) CreateOperationContext(context.Context, *graphql.RawParams) (*graphql.OperationContext, gqlerror.List) {
	return &graphql.OperationContext{}, gqlerror.List{f.err}
}

// bufferedBody is a request body limitBody read whole; sizedPOST looks at
// its bytes without reading them again.
type bufferedBody struct {
	*bytes.Reader
	b []byte
}

func (*bufferedBody) Close() error { return nil }

// rawQuery finds the "query" member of a GraphQL-over-HTTP JSON body without
// decoding anything: the text between its quotes, escapes undone by nobody.
// It walks only the top-level object, skipping other members' values by
// their brackets and quotes, at the speed of bytes.IndexByte. found is false
// whenever the body is not an object it can walk plainly — no query member,
// a query that is not a string, a key with an escape (encoding/json would
// unescape it and might match "query"), a syntax error it notices — and
// gqlgen's decoder then decides and reports, as always. Like encoding/json,
// the last of repeated members counts and keys match case-insensitively.
// Values it skips are not validated: a body with an oversized query and a
// malformed member elsewhere is refused for its query.
func rawQuery(body []byte) (raw []byte, found bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return nil, false
	}
	for i < len(body) {
		if body[i] != '"' {
			return nil, false
		}
		end := stringEnd(body, i)
		if end < 0 {
			return nil, false
		}
		key := body[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return nil, false
		}
		i = skipSpace(body, end)
		if i >= len(body) || body[i] != ':' {
			return nil, false
		}
		i = skipSpace(body, i+1)
		if bytes.EqualFold(key, []byte("query")) {
			if i >= len(body) || body[i] != '"' {
				return nil, false // null, or not a string: gqlgen says which
			}
			end = stringEnd(body, i)
			if end < 0 {
				return nil, false
			}
			raw, found = body[i+1:end-1], true
			i = end
		} else if i = skipValue(body, i); i < 0 {
			return nil, false
		}
		i = skipSpace(body, i)
		switch {
		case i < len(body) && body[i] == ',':
			i = skipSpace(body, i+1)
		case i < len(body) && body[i] == '}':
			return raw, found
		default:
			return nil, false
		}
	}
	return nil, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && jsonSpace(b[i]) {
		i++
	}
	return i
}

// jsonSpace reports whether c is JSON whitespace.
func jsonSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// stringEnd is the index just past the closing quote of the string whose
// opening quote is at b[i], or -1 when it is not closed.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return -1
		}
		q += j
		backslashes := 0
		for k := q - 1; k > i && b[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
	return -1
}

// skipValue is the index just past the value starting at b[i] (a string,
// an object or array by its brackets, or a literal), or -1 when the body
// ends first. Brackets are counted, not matched.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = stringEnd(b, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default:
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && !jsonSpace(b[i]) {
			i++
		}
		return i
	}
}

// decodedLen is how many bytes the JSON string text raw decodes to at
// least: exact for valid UTF-8, and never more than encoding/json produces
// (it replaces each invalid byte with the 3-byte U+FFFD).
func decodedLen(raw []byte) int {
	n := 0
	for {
		k := bytes.IndexByte(raw, '\\')
		if k < 0 || k+1 >= len(raw) {
			return n + len(raw)
		}
		n += k
		if raw[k+1] != 'u' {
			n++
			raw = raw[k+2:]
			continue
		}
		r, ok := hex4(raw[k+2:])
		if !ok {
			n++
			raw = raw[k+2:]
			continue
		}
		raw = raw[k+6:]
		if utf16.IsSurrogate(r) {
			if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
				if r2, ok := hex4(raw[2:]); ok && utf16.DecodeRune(r, r2) != utf8.RuneError {
					n += 4
					raw = raw[6:]
					continue
				}
			}
			n += utf8.RuneLen(utf8.RuneError)
			continue
		}
		n += utf8.RuneLen(r)
	}
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
