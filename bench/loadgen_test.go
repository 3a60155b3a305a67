package bench

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The load generator reads every kind of answer net/http's server writes —
// a Content-Length body, a chunked one, an empty 202, Connection: close —
// and keeps its connection where the server allows it.
func TestPosterReadsNetHTTPAnswers(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch string(body) {
		case "sized":
			w.Header().Set("Content-Length", "5")
			_, _ = w.Write([]byte("hello"))
		case "chunked":
			w.WriteHeader(http.StatusOK)
			for range 3 {
				_, _ = w.Write([]byte(strings.Repeat("x", 5000)))
				w.(http.Flusher).Flush()
			}
		case "close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusAccepted)
		case "bad":
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p, err := newPoster(srv.URL+"/hook?x=1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pc := p.conn()
	defer pc.close()
	for _, c := range []struct {
		body   string
		status int
	}{{"sized", 200}, {"chunked", 200}, {"", 202}, {"bad", 400}, {"sized", 200}, {"close", 202}, {"", 202}} {
		status, err := pc.post([]byte(c.body))
		if err != nil || status != c.status {
			t.Fatalf("%q: %d, %v; want %d", c.body, status, err, c.status)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want one, and one more after Connection: close", n)
	}
	if _, err := newPoster("https://example.test/", time.Second); err == nil {
		t.Error("https accepted")
	}
}
