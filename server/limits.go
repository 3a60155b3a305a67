package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/auth"
)

// ErrTooLarge is answered with 413.
var ErrTooLarge = apperr.New(apperr.RequestTooLarge,
	"リクエストが大きすぎます。",
	"The request body is too large.")

// limitBody answers 413 for bodies over max bytes (anonymous bytes when
// the request carries no valid token), whether the client declared the
// length or streamed it chunked. The body is buffered, so the limit also
// bounds memory per request.
func limitBody(authenticated, anonymous int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.Method == http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		max := authenticated
		if _, err := auth.FromContext(r.Context()); err != nil && anonymous > 0 && anonymous < max {
			max = anonymous
		}
		if r.ContentLength > max {
			tooLarge(w, r, max)
			return
		}
		buf, err := readBody(r, max)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				tooLarge(w, r, max)
				return
			}
			writeError(w, r, http.StatusBadRequest, apperr.New(apperr.InvalidInput, "リクエスト本文を読み取れませんでした。", "Could not read the request body."))
			return
		}
		if int64(len(buf)) > max {
			tooLarge(w, r, max)
			return
		}
		r.Body = &bufferedBody{Reader: bytes.NewReader(buf), b: buf}
		r.ContentLength = int64(len(buf))
		next.ServeHTTP(w, r)
	})
}

// readBody reads up to max+1 bytes of r's body: into one buffer of the
// declared length when there is one (io.ReadAll would grow and copy its
// buffer about twenty times for a megabyte), else as it comes.
func readBody(r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength < 0 {
		return io.ReadAll(io.LimitReader(r.Body, max+1))
	}
	buf := make([]byte, r.ContentLength)
	_, err := io.ReadFull(r.Body, buf)
	return buf, err
}

func tooLarge(w http.ResponseWriter, r *http.Request, max int64) {
	w.Header().Set("Connection", "close")
	writeError(w, r, http.StatusRequestEntityTooLarge, ErrTooLarge.WithExtra("maxBytes", strconv.FormatInt(max, 10)))
}
