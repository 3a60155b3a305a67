package server

import (
	"encoding/json"
	"mime"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
)

// Media types of a GraphQL-over-HTTP answer.
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

// specHTTP makes one of gqlgen's GET/POST transports answer a request that
// fails GraphQL parsing, validation or variable coercion as the
// GraphQL-over-HTTP spec (graphql.github.io/graphql-over-http) says, for
// off-the-shelf clients that follow it:
//   - application/json: 200 with the errors (gqlgen says 422); a legacy
//     client reads the status as "transport worked" and the errors from the
//     body.
//   - application/graphql-response+json: the 4xx gqlgen already sends, but
//     without a "data" entry (gqlgen writes "data": null), because no
//     execution started.
//
// A request that is not a GraphQL request at all (malformed JSON, no query)
// keeps its 400 under both.
type specHTTP struct{ graphql.Transport }

// Do serves the request through the wrapped transport, correcting its answer
// and writing an executed operation's answer itself (see directAnswers).
func (s specHTTP) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	sw := &specWriter{ResponseWriter: w}
	s.Transport.Do(sw, r, directAnswers{GraphExecutor: exec, w: sw})
}

type specWriter struct {
	http.ResponseWriter
	noData  bool // drop the "data" entry of the body being written
	written bool // the answer went out already: drop what the transport writes
}

func (s *specWriter) WriteHeader(code int) {
	media, _, _ := mime.ParseMediaType(s.Header().Get("Content-Type"))
	switch {
	case media == mediaJSON && code == http.StatusUnprocessableEntity:
		code = http.StatusOK
	case media == mediaGraphQLResponse && code >= 400:
		s.noData = true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *specWriter) Write(b []byte) (int, error) {
	if s.written {
		return len(b), nil
	}
	if !s.noData {
		return s.ResponseWriter.Write(b)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(b, &body); err != nil {
		return s.ResponseWriter.Write(b)
	}
	delete(body, "data")
	out, err := json.Marshal(body)
	if err != nil {
		return s.ResponseWriter.Write(b)
	}
	if _, err := s.ResponseWriter.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
