package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
)

// directAnswers writes the answer of an executed operation to the client as
// gqlgen produced it. gqlgen's GET and POST transports pass every answer
// through encoding/json.Marshal, which validates and compacts the "data"
// gqlgen's own marshallers just wrote: about 1 ms per 100 KB, a quarter of
// the GraphQL side of a 500-user calendarAvailability answer
// (bench/profiles.md). Answers that are not a plain {errors, data} — an
// incremental (@defer) part, extensions — keep gqlgen's path, as do requests
// that fail before execution (specWriter corrects those).
type directAnswers struct {
	graphql.GraphExecutor
	w *specWriter
}

// DispatchOperation runs the operation through gqlgen and writes its answer;
// the transport's own copy, which follows, is dropped by the specWriter.
func (d directAnswers) DispatchOperation(ctx context.Context, rc *graphql.OperationContext) (graphql.ResponseHandler, context.Context) {
	next, ctx := d.GraphExecutor.DispatchOperation(ctx, rc)
	return func(ctx context.Context) *graphql.Response {
		resp := next(ctx)
		if resp == nil || !plainAnswer(resp) {
			return resp
		}
		head, err := answerHead(resp)
		if err != nil {
			return resp
		}
		data := answerData(resp)
		d.w.written = true
		w := d.w.ResponseWriter
		w.Header().Set("Content-Length", strconv.Itoa(len(head)+len(data)+1))
		// A client gone away is not ours to report.
		if _, err := w.Write(head); err == nil {
			if _, err := w.Write(data); err == nil {
				_, _ = w.Write([]byte{'}'})
			}
		}
		return &graphql.Response{}
	}, ctx
}

// plainAnswer reports whether resp holds nothing but errors and data (gqlgen
// sets an empty extensions map on every answer; encoding/json omits it).
func plainAnswer(r *graphql.Response) bool {
	return r.Label == "" && len(r.Path) == 0 && r.HasNext == nil && len(r.Extensions) == 0
}

// A plain answer's JSON is answerHead, answerData and a closing brace, in
// graphql.Response's field order, with the data as gqlgen wrote it: written
// in three pieces, the data is never copied.

// answerHead is the JSON of a plain answer up to its data.
func answerHead(r *graphql.Response) ([]byte, error) {
	b := []byte{'{'}
	if len(r.Errors) > 0 {
		errs, err := json.Marshal(r.Errors)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, `"errors":`...), errs...), ',')
	}
	return append(b, `"data":`...), nil
}

// answerData is a plain answer's data as gqlgen wrote it, or null.
func answerData(r *graphql.Response) []byte {
	if data := bytes.TrimSpace(r.Data); len(data) > 0 {
		return data
	}
	return []byte("null")
}

var _ graphql.GraphExecutor = directAnswers{}
var _ http.ResponseWriter = (*specWriter)(nil)
