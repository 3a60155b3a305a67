package graphemu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
)

const maxBatch = 20

type batchRequest struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"`
	Body      json.RawMessage   `json:"body"`
	DependsOn []string          `json:"dependsOn"`
}

// batch runs JSON $batch requests one by one, each through the same
// handlers (and throttling) as a direct call.
func (e *Emulator) batch(w http.ResponseWriter, r *http.Request, _ principal) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Unable to read the request body.")
		return
	}
	var in struct {
		Requests []batchRequest `json:"requests"`
	}
	if err := json.Unmarshal(raw, &in); err != nil || in.Requests == nil {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Invalid batch payload format.")
		return
	}
	if len(in.Requests) > maxBatch {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Number of batch request steps exceeds the maximum of %d.", maxBatch))
		return
	}
	seen := map[string]bool{}
	responses := make([]any, 0, len(in.Requests))
	for _, br := range in.Requests {
		if br.ID == "" || seen[br.ID] {
			writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Batch request ids must be present and unique.")
			return
		}
		seen[br.ID] = true
		responses = append(responses, e.runBatchStep(r, br))
	}
	writeJSON(w, http.StatusOK, map[string]any{"responses": responses})
}

func (e *Emulator) runBatchStep(outer *http.Request, br batchRequest) map[string]any {
	path := br.URL
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	var body io.Reader = http.NoBody
	if len(br.Body) > 0 && string(br.Body) != "null" {
		body = bytes.NewReader(br.Body)
	}
	req, err := http.NewRequestWithContext(outer.Context(), strings.ToUpper(br.Method), "/v1.0"+path, body)
	if err != nil {
		return map[string]any{"id": br.ID, "status": 400, "body": map[string]any{"error": map[string]any{"code": "BadRequest", "message": "Invalid request URL."}}}
	}
	req.Host = outer.Host
	for k, v := range br.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Authorization", outer.Header.Get("Authorization"))
	if req.Header.Get("Content-Type") == "" && body != http.NoBody {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	sr := &statusRecorder{ResponseWriter: rec}
	e.mux.ServeHTTP(sr, req.WithContext(context.WithValue(req.Context(), mailboxKey{}, sr)))
	e.logRequest(req.Method, req.URL.Path, rec.Code, sr.mailbox, true)

	headers := map[string]string{}
	for _, h := range []string{"Content-Type", "Retry-After", "ETag", "Location", "Preference-Applied"} {
		if v := rec.Header().Get(h); v != "" {
			headers[h] = v
		}
	}
	out := map[string]any{"id": br.ID, "status": rec.Code, "headers": headers}
	if rec.Body.Len() > 0 {
		var parsed any
		if json.Unmarshal(rec.Body.Bytes(), &parsed) == nil {
			out["body"] = parsed
		}
	}
	return out
}
