package graphemu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// batchParallel is how many steps of one batch Outlook evaluates at once
// (concepts/throttling-limits.md, Outlook service limits).
const batchParallel = 4

// batch runs JSON $batch requests as concepts/json-batching.md describes:
// steps in any order, up to batchParallel at once, each through the same
// handlers (and throttling, so a single step can answer 429) as a direct
// call; a step waits for the steps it dependsOn and fails with 424 when one
// of them failed; the responses come back in any order.
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
	done := map[string]chan struct{}{}
	for _, br := range in.Requests {
		if br.ID == "" || done[br.ID] != nil {
			writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Batch request ids must be present and unique.")
			return
		}
		for _, d := range br.DependsOn {
			if done[d] == nil {
				// Earlier steps only: no cycles.
				writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Request %s depends on %s, which is not an earlier request of the batch.", br.ID, d))
				return
			}
		}
		done[br.ID] = make(chan struct{})
	}
	var mu sync.Mutex
	status := map[string]int{}
	responses := make([]any, len(in.Requests))
	sem := make(chan struct{}, batchParallel)
	var wg sync.WaitGroup
	for i, br := range in.Requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[br.ID])
			failed := ""
			for _, d := range br.DependsOn {
				<-done[d]
				mu.Lock()
				if status[d] >= 400 {
					failed = d
				}
				mu.Unlock()
			}
			var out map[string]any
			if failed != "" {
				out = map[string]any{"id": br.ID, "status": http.StatusFailedDependency, "body": map[string]any{"error": map[string]any{
					"code": "FailedDependency", "message": fmt.Sprintf("Request %s failed, and this request depends on it.", failed)}}}
			} else {
				sem <- struct{}{}
				out = e.runBatchStep(r, br)
				<-sem
			}
			mu.Lock()
			status[br.ID] = out["status"].(int)
			responses[i] = out
			mu.Unlock()
		}()
	}
	wg.Wait()
	rand.Shuffle(len(responses), func(i, j int) { responses[i], responses[j] = responses[j], responses[i] })
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
