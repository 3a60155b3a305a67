package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tehaishokunin/calsync/apperr"
)

// maxErrors and maxMessageBytes bound an error answer: a document of many
// small mistakes (1 MB of unknown directives) must not make a response a
// hundred times its size, nor echo what it was sent.
const (
	maxErrors       = 20
	maxMessageBytes = 512
)

// capErrors keeps the first n errors of a response, adds one that says how
// many were left out, and cuts every message to maxMessageBytes.
func capErrors(n int) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if resp == nil {
			return nil
		}
		if extra := len(resp.Errors) - n; extra > 0 {
			lang := apperr.LangFrom(ctx)
			more := apperr.New(apperr.InvalidInput,
				fmt.Sprintf("ほかに %d 件のエラーがあります (最初の %d 件のみ表示)。", extra, n),
				fmt.Sprintf("%d more errors were left out (only the first %d are shown).", extra, n))
			resp.Errors = append(resp.Errors[:n:n], &gqlerror.Error{Message: more.Message.In(lang),
				Extensions: map[string]any{"code": apperr.InvalidInput, "omitted": extra}})
		}
		for _, e := range resp.Errors {
			e.Message = truncate(e.Message, maxMessageBytes)
		}
		return resp
	}
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// safeMultipart is gqlgen's multipart transport, answering 422 instead of
// crashing the request when the form's map names a path that does not
// exist in the operation's variables (an index out of range, a list where
// an object is, …): gqlgen's AddUpload indexes without checking.
type safeMultipart struct{ transport.MultipartForm }

func (m safeMultipart) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	rec := &headerTracker{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if rec.wrote {
				return // an answer is already on its way; nothing sensible to add
			}
			writeError(rec, r, http.StatusUnprocessableEntity, errBadUploadMap)
		}
	}()
	m.MultipartForm.Do(rec, r, exec)
}

var errBadUploadMap = apperr.New(apperr.InvalidInput,
	"multipart の map が operations の変数にない場所を指しています。",
	"The multipart map names a path that is not in the operation's variables.").WithField("map")

type headerTracker struct {
	http.ResponseWriter
	wrote bool
}

func (h *headerTracker) WriteHeader(code int) { h.wrote = true; h.ResponseWriter.WriteHeader(code) }
func (h *headerTracker) Write(b []byte) (int, error) {
	h.wrote = true
	return h.ResponseWriter.Write(b)
}

// codedErrors gives every error answer of the GraphQL transports a stable
// extensions.code and a message in the caller's language. gqlgen's
// transports write some refusals themselves (malformed GET parameters,
// multipart forms), outside the error presenter; those bodies are rewritten
// here, without echoing what the client sent. Websocket upgrades pass
// untouched.
func codedErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		cw := &codingWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		cw.finish(r)
	})
}

type codingWriter struct {
	http.ResponseWriter
	status int
	buf    *bytes.Buffer // set when the answer is an error being held back
}

func (c *codingWriter) WriteHeader(code int) {
	if c.status != 0 {
		return
	}
	c.status = code
	if code >= 400 {
		c.buf = &bytes.Buffer{}
		return
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *codingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.buf != nil {
		if c.buf.Len() < 1<<20 {
			c.buf.Write(b)
		}
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

func (c *codingWriter) finish(r *http.Request) {
	if c.buf == nil {
		return
	}
	var body struct {
		Errors []map[string]any `json:"errors"`
		Data   json.RawMessage  `json:"data,omitempty"`
	}
	if err := json.Unmarshal(c.buf.Bytes(), &body); err != nil || len(body.Errors) == 0 {
		c.ResponseWriter.WriteHeader(c.status)
		_, _ = c.ResponseWriter.Write(c.buf.Bytes())
		return
	}
	lang := apperr.LangFrom(r.Context())
	for i, e := range body.Errors {
		ext, _ := e["extensions"].(map[string]any)
		if _, coded := ext["code"]; coded {
			continue
		}
		ae := errMalformed
		if c.status == http.StatusRequestEntityTooLarge {
			ae = ErrTooLarge
		}
		body.Errors[i] = map[string]any{"message": ae.Message.In(lang), "extensions": map[string]any{"code": ae.Code}}
	}
	c.Header().Del("Content-Length")
	writeJSON(c.ResponseWriter, c.status, body)
}

var errMalformed = apperr.New(apperr.InvalidInput,
	"GraphQL リクエストの形式が正しくありません。",
	"The GraphQL request is malformed.").
	WithHint("query, variables, operationName を持つ JSON、または GraphQL multipart request 仕様の形式で送ってください。",
		"Send JSON with query, variables and operationName, or a GraphQL multipart request.")
