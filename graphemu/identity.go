package graphemu

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

const graphAudience = "https://graph.microsoft.com"

func (e *Emulator) routeIdentity(mux *http.ServeMux) {
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", e.openidConfiguration)
	mux.HandleFunc("GET /common/discovery/instance", e.instanceDiscovery)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", e.token)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", e.keys)
}

// aadError writes an Entra ID token-endpoint error.
func aadError(w http.ResponseWriter, status int, errCode string, aadsts int, desc string) {
	now := time.Now().UTC()
	trace, corr := newGUID(), newGUID()
	writeJSON(w, status, map[string]any{
		"error": errCode,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
			aadsts, desc, trace, corr, now.Format("2006-01-02 15:04:05Z")),
		"error_codes":    []int{aadsts},
		"timestamp":      now.Format("2006-01-02 15:04:05Z"),
		"trace_id":       trace,
		"correlation_id": corr,
		"error_uri":      fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

func (e *Emulator) tenantNotFound(w http.ResponseWriter, name string) {
	aadError(w, http.StatusBadRequest, "invalid_request", 90002,
		fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", name))
}

func (e *Emulator) lookupTenant(name string) *tenant {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tenants[strings.ToLower(name)]
}

func (e *Emulator) openidConfiguration(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	t := e.lookupTenant(name)
	if t == nil {
		e.tenantNotFound(w, name)
		return
	}
	base := baseURL(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/" + t.id + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/" + t.id + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/" + t.id + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     base + "/oidc/userinfo",
		"authorization_endpoint":                base + "/" + t.id + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/" + t.id + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/" + t.id + "/oauth2/v2.0/logout",
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "tid", "roles"},
		"kerberos_endpoint":                     base + "/" + t.id + "/kerberos",
		"tenant_region_scope":                   "AS",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
		"rbac_url":                              "https://pas.windows.net",
	})
}

func (e *Emulator) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": baseURL(r) + "/common/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []any{map[string]any{
			"preferred_network": host,
			"preferred_cache":   host,
			"aliases":           []string{host},
		}},
	})
}

func (e *Emulator) keys(w http.ResponseWriter, r *http.Request) {
	k, err := jwk.FromRaw(e.key.Public())
	if err != nil {
		writeGraphError(w, r, 500, "InternalServerError", err.Error())
		return
	}
	_ = k.Set(jwk.KeyIDKey, e.kid)
	_ = k.Set(jwk.AlgorithmKey, jwa.RS256)
	set := jwk.NewSet()
	_ = set.AddKey(k)
	writeJSON(w, http.StatusOK, set)
}

func (e *Emulator) token(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	if err := r.ParseForm(); err != nil {
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		aadError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt))
		return
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if !slices.Contains(scopes, graphAudience+"/.default") {
		aadError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", r.PostForm.Get("scope")))
		return
	}

	e.mu.Lock()
	t := e.tenants[strings.ToLower(name)]
	var a *app
	if t != nil {
		a = t.apps[strings.ToLower(clientID)]
	}
	now := e.now()
	e.mu.Unlock()

	switch {
	case t == nil:
		e.tenantNotFound(w, name)
		return
	case a == nil:
		aadError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, t.domain))
		return
	case secret == "":
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
		return
	case secret != a.secret:
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID))
		return
	case !a.secretExpires.IsZero() && !now.Before(a.secretExpires):
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000222,
			fmt.Sprintf("The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", clientID))
		return
	}

	tok, err := e.issueToken(t, a, now)
	if err != nil {
		aadError(w, http.StatusInternalServerError, "server_error", 50000, "There was an error issuing a token.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     int(e.opts.TokenLifetime.Seconds()) - 1,
		"ext_expires_in": int(e.opts.TokenLifetime.Seconds()) - 1,
		"access_token":   tok,
	})
}

func (e *Emulator) issueToken(t *tenant, a *app, now time.Time) (string, error) {
	b := jwt.NewBuilder().
		Audience([]string{graphAudience}).
		Issuer("https://sts.windows.net/"+t.id+"/").
		IssuedAt(now).
		NotBefore(now.Add(-5*time.Minute)).
		Expiration(now.Add(e.opts.TokenLifetime)).
		Subject(a.clientID).
		Claim("tid", t.id).
		Claim("appid", a.clientID).
		Claim("oid", a.clientID).
		Claim("idtyp", "app").
		Claim("ver", "1.0")
	if len(a.roles) > 0 {
		b = b.Claim("roles", a.roles)
	}
	tok, err := b.Build()
	if err != nil {
		return "", err
	}
	k, err := jwk.FromRaw(e.key)
	if err != nil {
		return "", err
	}
	_ = k.Set(jwk.KeyIDKey, e.kid)
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, k))
	return string(signed), err
}

// principal is the app behind a Graph call.
type principal struct {
	tenant *tenant
	app    *app
	roles  []string
}

func (p principal) has(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(p.roles, r) {
			return true
		}
	}
	return false
}

// authenticate checks the bearer token of a Graph call; on failure it has
// written Graph's 401 answer.
func (e *Emulator) authenticate(w http.ResponseWriter, r *http.Request) (principal, bool) {
	h := r.Header.Get("Authorization")
	raw, found := strings.CutPrefix(h, "Bearer ")
	if !found || strings.TrimSpace(raw) == "" {
		writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
		return principal{}, false
	}
	tok, err := jwt.ParseString(strings.TrimSpace(raw),
		jwt.WithKey(jwa.RS256, e.key.Public()),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(e.now)),
		jwt.WithAudience(graphAudience))
	if err != nil {
		msg := "Access token validation failure. Invalid audience."
		if strings.Contains(err.Error(), "exp") {
			msg = "Lifetime validation failed, the token is expired."
		} else if !strings.Contains(err.Error(), "aud") {
			msg = "IDX14100: JWT is not well formed."
		}
		writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		return principal{}, false
	}
	tid, _ := tok.PrivateClaims()["tid"].(string)
	appid, _ := tok.PrivateClaims()["appid"].(string)
	e.mu.Lock()
	t := e.tenants[strings.ToLower(tid)]
	var a *app
	if t != nil {
		a = t.apps[strings.ToLower(appid)]
	}
	e.mu.Unlock()
	if a == nil {
		writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure.")
		return principal{}, false
	}
	var roles []string
	if list, ok := tok.PrivateClaims()["roles"].([]any); ok {
		for _, x := range list {
			if s, ok := x.(string); ok {
				roles = append(roles, s)
			}
		}
	}
	if len(roles) == 0 {
		// An app-only token with no roles claim: the app was granted no
		// application permission (Microsoft Learn, "NoPermissionsInAccessToken
		// error when calling the /me endpoint").
		writeGraphError(w, r, http.StatusUnauthorized, "NoPermissionsInAccessToken", "The token contains no permissions, or permissions can not be understood.")
		return principal{}, false
	}
	return principal{tenant: t, app: a, roles: roles}, true
}
