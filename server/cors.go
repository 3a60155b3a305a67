package server

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// cors lets the host frontend, served from another origin, call /graphql
// from the browser. Only origins in allowed (CALSYNC_ALLOWED_ORIGINS, the
// same list the websocket checks) get CORS headers; a preflight from any
// other origin is refused with 403. Callers authenticate with a bearer
// header, not cookies, so credentials are never allowed.
func cors(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		ok := originAllowed(origin, allowed)
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight {
			w.Header().Add("Vary", "Access-Control-Request-Method")
			w.Header().Add("Vary", "Access-Control-Request-Headers")
			if !ok {
				http.Error(w, "origin not allowed", http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Accept-Language")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ok {
			w.Header().Set("Access-Control-Allow-Origin", origin)
		}
		next.ServeHTTP(w, r)
	})
}

// originAllowed matches an Origin header against patterns the way the
// websocket check does: "scheme://host" patterns against scheme and host,
// bare patterns against the host, both with path.Match wildcards.
func originAllowed(origin string, patterns []string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if m, err := path.Match(strings.ToLower(p), strings.ToLower(target)); err == nil && m {
			return true
		}
	}
	return false
}
