package graphemu

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Documented limits for Outlook event subscriptions.
const (
	maxExpiration     = 10080 * time.Minute
	maxClientState    = 128
	maxPerMailbox     = 1000
	handshakeDeadline = 10 * time.Second
)

type subscription struct {
	id              string
	tenant          *tenant
	app             *app
	user            *user
	resource        string
	changeTypes     []string
	notificationURL string
	lifecycleURL    string
	expiration      time.Time
	clientState     string
	immutable       bool
	tlsVersion      string
	created         time.Time
	needsReauth     bool
	authorizedAt    time.Time        // created, renewed or reauthorized
	held            []map[string]any // change notifications paused until reauthorization
}

func (s *subscription) render() map[string]any {
	return map[string]any{
		"@odata.context":            "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
		"id":                        s.id,
		"resource":                  s.resource,
		"applicationId":             s.app.clientID,
		"changeType":                strings.Join(s.changeTypes, ","),
		"clientState":               nullable(s.clientState),
		"notificationUrl":           s.notificationURL,
		"notificationQueryOptions":  nil,
		"lifecycleNotificationUrl":  nullable(s.lifecycleURL),
		"expirationDateTime":        s.expiration.UTC().Format(time.RFC3339Nano),
		"creatorId":                 s.app.clientID,
		"includeResourceData":       false,
		"latestSupportedTlsVersion": s.tlsVersion,
		"encryptionCertificate":     nil,
		"encryptionCertificateId":   nil,
		"notificationUrlAppId":      nil,
	}
}

var eventResource = regexp.MustCompile(`(?i)^/?users/([^/]+)/(?:calendar/)?events$`)

// purgeExpiredLocked drops subscriptions past their expiration, as Graph
// does.
func (e *Emulator) purgeExpiredLocked() {
	now := e.now()
	for id, s := range e.subs {
		if !s.expiration.After(now) {
			delete(e.subs, id)
			continue
		}
		// Graph challenges subscriptions on its own, at no set cadence
		// (concepts/change-notifications-lifecycle-events.md); here every
		// Options.ReauthorizeAfter since the last (re)authorization.
		if d := e.opts.ReauthorizeAfter; d > 0 && !s.needsReauth && now.Sub(s.authorizedAt) >= d {
			s.needsReauth = true
			e.sendLifecycleLocked(s, "reauthorizationRequired")
		}
	}
}

// reauthorizedLocked resumes s's change notifications, as Graph does once
// the app reauthorizes or renews it: those held meanwhile go out.
func (e *Emulator) reauthorizedLocked(s *subscription) {
	s.needsReauth = false
	s.authorizedAt = e.now()
	for _, n := range s.held {
		e.notifier.enqueue(s.notificationURL, n, 0)
	}
	s.held = nil
}

func validURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	if u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func (e *Emulator) createSubscription(w http.ResponseWriter, r *http.Request, p principal) {
	body, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	str := func(k string) string { s, _ := body[k].(string); return s }
	resource := str("resource")
	m := eventResource.FindStringSubmatch(resource)
	if m == nil {
		writeGraphError(w, r, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("Invalid 'resource' value: '%s'. Only users/{id}/events is supported by this emulator.", resource))
		return
	}
	var changeTypes []string
	for _, c := range strings.Split(str("changeType"), ",") {
		c = strings.TrimSpace(c)
		switch c {
		case "created", "updated", "deleted":
			changeTypes = append(changeTypes, c)
		default:
			writeGraphError(w, r, http.StatusBadRequest, "ValidationError", fmt.Sprintf("'%s' is not a valid change type.", c))
			return
		}
	}
	now := e.now()
	exp, err := time.Parse(time.RFC3339Nano, str("expirationDateTime"))
	if err != nil {
		writeGraphError(w, r, http.StatusBadRequest, "ValidationError", "expirationDateTime is required and must be an ISO 8601 date and time.")
		return
	}
	if !exp.After(now) || exp.Sub(now) > maxExpiration {
		writeGraphError(w, r, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("Subscription expiration can only be %d minutes in the future.", int(maxExpiration.Minutes())))
		return
	}
	clientState := str("clientState")
	if len(clientState) > maxClientState {
		writeGraphError(w, r, http.StatusBadRequest, "ValidationError", fmt.Sprintf("The clientState is too long: maximum length is %d characters.", maxClientState))
		return
	}
	notifURL, lifeURL := str("notificationUrl"), str("lifecycleNotificationUrl")
	if !validURL(notifURL) || (lifeURL != "" && !validURL(lifeURL)) {
		writeGraphError(w, r, http.StatusBadRequest, "ValidationError", "The notification URL must be an absolute HTTPS URL.")
		return
	}

	// The mailbox must be reachable by the app, as for any event call.
	r.SetPathValue("uid", m[1])
	u, release, ok := e.mailbox(w, r, p, false)
	if !ok {
		return
	}
	release()
	e.mu.Lock()
	e.purgeExpiredLocked()
	n := 0
	for _, s := range e.subs {
		if s.user == u {
			n++
		}
	}
	e.mu.Unlock()
	if n >= maxPerMailbox {
		writeGraphError(w, r, http.StatusForbidden, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: The maximum number of subscriptions for this mailbox has been reached.]")
		return
	}

	for _, target := range []string{notifURL, lifeURL} {
		if target == "" {
			continue
		}
		if err := e.handshake(r.Context(), target); err != nil {
			writeGraphError(w, r, http.StatusBadRequest, "ValidationError",
				"Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ("+err.Error()+")")
			return
		}
	}

	tls := str("latestSupportedTlsVersion")
	if tls == "" {
		tls = "v1_2"
	}
	s := &subscription{
		id: newGUID(), tenant: p.tenant, app: p.app, user: u, resource: resource, changeTypes: changeTypes,
		notificationURL: notifURL, lifecycleURL: lifeURL, expiration: exp, clientState: clientState,
		immutable: parsePrefer(r).immutable, tlsVersion: tls, created: now, authorizedAt: now,
	}
	e.mu.Lock()
	e.subs[s.id] = s
	out := s.render()
	e.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

// handshake performs Graph's validation request against target.
func (e *Emulator) handshake(ctx context.Context, target string) error {
	if e.takeFailHandshake() {
		return fmt.Errorf("the endpoint did not answer")
	}
	token := "Validation: Testing client application reachability for subscription Request-Id: " + newGUID()
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("validationToken", token)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handshakeDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := e.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("the endpoint could not be reached")
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %d", resp.StatusCode)
	case !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"):
		return fmt.Errorf("content type %q is not text/plain", resp.Header.Get("Content-Type"))
	case string(b) != token:
		return fmt.Errorf("the response body is not the decoded validation token")
	}
	return nil
}

// ownSubscription finds a live subscription of the calling app.
func (e *Emulator) ownSubscription(w http.ResponseWriter, r *http.Request, p principal) *subscription {
	e.mu.Lock()
	e.purgeExpiredLocked()
	s := e.subs[r.PathValue("sid")]
	e.mu.Unlock()
	if s == nil || s.app != p.app {
		writeGraphError(w, r, http.StatusNotFound, "ResourceNotFound", "The object was not found.")
		return nil
	}
	return s
}

func (e *Emulator) getSubscription(w http.ResponseWriter, r *http.Request, p principal) {
	if s := e.ownSubscription(w, r, p); s != nil {
		e.mu.Lock()
		out := s.render()
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	}
}

func (e *Emulator) listSubscriptions(w http.ResponseWriter, r *http.Request, p principal) {
	e.mu.Lock()
	e.purgeExpiredLocked()
	out := []any{}
	for _, s := range e.subs {
		if s.app == p.app {
			out = append(out, s.render())
		}
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": baseURL(r) + "/v1.0/$metadata#subscriptions", "value": out})
}

func (e *Emulator) updateSubscription(w http.ResponseWriter, r *http.Request, p principal) {
	s := e.ownSubscription(w, r, p)
	if s == nil {
		return
	}
	// Subscription calls on a mailbox count against its throttling budget.
	release, ok := e.admit(w, r, p.app, s.user)
	if !ok {
		return
	}
	defer release()
	body, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	raw, _ := body["expirationDateTime"].(string)
	exp, err := time.Parse(time.RFC3339Nano, raw)
	now := e.now()
	if err != nil {
		writeGraphError(w, r, http.StatusBadRequest, "ValidationError", "expirationDateTime must be an ISO 8601 date and time.")
		return
	}
	if !exp.After(now) || exp.Sub(now) > maxExpiration {
		writeGraphError(w, r, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("Subscription expiration can only be %d minutes in the future.", int(maxExpiration.Minutes())))
		return
	}
	e.mu.Lock()
	s.expiration = exp
	e.reauthorizedLocked(s)
	out := s.render()
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) deleteSubscription(w http.ResponseWriter, r *http.Request, p principal) {
	s := e.ownSubscription(w, r, p)
	if s == nil {
		return
	}
	e.mu.Lock()
	delete(e.subs, s.id)
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) reauthorizeSubscription(w http.ResponseWriter, r *http.Request, p principal) {
	s := e.ownSubscription(w, r, p)
	if s == nil {
		return
	}
	release, ok := e.admit(w, r, p.app, s.user)
	if !ok {
		return
	}
	defer release()
	e.mu.Lock()
	e.reauthorizedLocked(s)
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// notifyLocked queues a change notification for every subscription on u
// that wants changeType.
func (e *Emulator) notifyLocked(u *user, ev *event, changeType string) {
	e.purgeExpiredLocked()
	for _, s := range e.subs {
		if s.user != u || !containsString(s.changeTypes, changeType) {
			continue
		}
		if e.faults.dropNotifications > 0 {
			// Graph could not deliver this one: it says so with a
			// "missed" lifecycle notification
			// (concepts/change-notifications-lifecycle-events.md).
			e.faults.dropNotifications--
			if !e.faults.dropSilently {
				e.sendLifecycleLocked(s, "missed")
			}
			continue
		}
		var delay time.Duration
		if e.faults.delayCount > 0 {
			e.faults.delayCount--
			delay = e.faults.delayBy
		}
		id := ev.idFor(s.immutable)
		resource := "Users/" + u.id + "/Events/" + id
		data := map[string]any{"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource, "id": id}
		if changeType != "deleted" {
			data["@odata.etag"] = fmt.Sprintf("W/\"%s\"", ev.changeKey)
		}
		n := map[string]any{
			"id":                             randomID(12),
			"subscriptionId":                 s.id,
			"subscriptionExpirationDateTime": s.expiration.UTC().Format("2006-01-02T15:04:05.0000000+00:00"),
			"changeType":                     changeType,
			"resource":                       resource,
			"resourceData":                   data,
			"clientState":                    nullable(s.clientState),
			"tenantId":                       s.tenant.id,
		}
		if s.needsReauth {
			// "If the API call succeeds, the change notification flow
			// resumes": until then nothing is delivered.
			s.held = append(s.held, n)
			continue
		}
		e.notifier.enqueue(s.notificationURL, n, delay)
	}
}

// lifecycle sends a lifecycle notification for subscription id.
func (e *Emulator) lifecycle(id, kind string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.purgeExpiredLocked()
	s := e.subs[id]
	if s == nil {
		return fmt.Errorf("no live subscription %s", id)
	}
	switch kind {
	case "reauthorizationRequired":
		s.needsReauth = true
	case "subscriptionRemoved":
		delete(e.subs, id)
	case "missed":
	default:
		return fmt.Errorf("unknown lifecycleEvent %q", kind)
	}
	e.sendLifecycleLocked(s, kind)
	return nil
}

// sendLifecycleLocked queues a lifecycle notification of kind for s, when
// it has a lifecycle URL.
func (e *Emulator) sendLifecycleLocked(s *subscription, kind string) {
	if s.lifecycleURL == "" {
		return
	}
	e.notifier.enqueue(s.lifecycleURL, map[string]any{
		"lifecycleEvent":                 kind,
		"subscriptionId":                 s.id,
		"subscriptionExpirationDateTime": s.expiration.UTC().Format("2006-01-02T15:04:05.0000000+00:00"),
		"clientState":                    nullable(s.clientState),
		"tenantId":                       s.tenant.id,
	}, 0)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
