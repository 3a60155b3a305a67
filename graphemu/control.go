package graphemu

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (e *Emulator) routeControl(mux *http.ServeMux) {
	mux.HandleFunc("POST /_emulator/tenants", e.ctlTenants)
	mux.HandleFunc("POST /_emulator/users/{uid}/events", e.ctlCreateEvent)
	mux.HandleFunc("PATCH /_emulator/users/{uid}/events/{eid}", e.ctlUpdateEvent)
	mux.HandleFunc("DELETE /_emulator/users/{uid}/events/{eid}", e.ctlDeleteEvent)
	mux.HandleFunc("POST /_emulator/users/{uid}/events/{eid}/dismissReminder", e.ctlDismissReminder)
	mux.HandleFunc("GET /_emulator/users/{uid}/events", e.ctlListEvents)
	mux.HandleFunc("PATCH /_emulator/tenants/{tid}/apps/{cid}", e.ctlPatchApp)
	mux.HandleFunc("PATCH /_emulator/users/{uid}", e.ctlPatchUser)
	mux.HandleFunc("GET /_emulator/subscriptions", e.ctlSubscriptions)
	mux.HandleFunc("POST /_emulator/subscriptions/{sid}/lifecycle", e.ctlLifecycle)
	mux.HandleFunc("POST /_emulator/faults", e.ctlAddFault)
	mux.HandleFunc("DELETE /_emulator/faults", e.ctlClearFaults)
	mux.HandleFunc("GET /_emulator/requests", e.ctlRequests)
	mux.HandleFunc("GET /_emulator/state", e.ctlState)
	mux.HandleFunc("POST /_emulator/reset", e.ctlReset)
}

// ctlPatchApp changes an app's granted application permissions, as an
// admin granting or revoking consent does. Tokens already issued keep the
// roles they carry until they expire, as in Entra ID; an app that no
// longer holds a Calendars permission loses its event subscriptions, each
// with a subscriptionRemoved lifecycle notification
// (concepts/change-notifications-lifecycle-events.md).
func (e *Emulator) ctlPatchApp(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Roles *[]string `json:"roles"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Roles == nil {
		ctlError(w, http.StatusBadRequest, "body must be {\"roles\": [...]}")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenants[strings.ToLower(r.PathValue("tid"))]
	var a *app
	if t != nil {
		a = t.apps[strings.ToLower(r.PathValue("cid"))]
	}
	if a == nil {
		ctlError(w, http.StatusNotFound, "no app %s in tenant %s", r.PathValue("cid"), r.PathValue("tid"))
		return
	}
	a.roles = slices.Clone(*body.Roles)
	if !slices.ContainsFunc(a.roles, func(r string) bool { return strings.HasPrefix(r, "Calendars.") }) {
		for id, s := range e.subs {
			if s.app == a {
				delete(e.subs, id)
				e.sendLifecycleLocked(s, "subscriptionRemoved")
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"clientId": a.clientID, "roles": a.roles})
}

func ctlError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]any{"error": fmt.Sprintf(format, args...)})
}

// TenantSpec is the body of POST /_emulator/tenants.
type TenantSpec struct {
	TenantID string     `json:"tenantId"`
	Domain   string     `json:"domain"`
	Apps     []AppSpec  `json:"apps"`
	Users    []UserSpec `json:"users"`
}

// AppSpec is an app registration in a tenant, with its consented
// application permissions.
type AppSpec struct {
	ClientID         string     `json:"clientId"`
	Secret           string     `json:"secret"`
	SecretExpiresAt  *time.Time `json:"secretExpiresAt,omitempty"`
	Roles            []string   `json:"roles"`
	AllowedMailboxes []string   `json:"allowedMailboxes,omitempty"`
}

// UserSpec is a mailbox.
type UserSpec struct {
	ID          string `json:"id,omitempty"`
	Mail        string `json:"mail"`
	DisplayName string `json:"displayName"`
	// Mailbox false: a user without an Exchange Online mailbox (a licence
	// without Exchange, a guest, a mailbox on-premises).
	Mailbox *bool `json:"mailbox,omitempty"`
	// MailboxReadyAfterSeconds: a new hire whose mailbox is still being
	// provisioned; calendar calls fail until that long after creation.
	MailboxReadyAfterSeconds int `json:"mailboxReadyAfterSeconds,omitempty"`
}

// AddTenant creates (or extends) a tenant; it returns the users with their
// ids. It is what POST /_emulator/tenants does, for in-process callers.
func (e *Emulator) AddTenant(spec TenantSpec) ([]UserSpec, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if spec.TenantID == "" {
		spec.TenantID = newGUID()
	}
	t := e.tenants[strings.ToLower(spec.TenantID)]
	if t == nil {
		if spec.Domain == "" {
			spec.Domain = "tenant" + randomID(4) + ".onmicrosoft.com"
		}
		if other := e.tenants[strings.ToLower(spec.Domain)]; other != nil {
			return nil, fmt.Errorf("domain %s belongs to tenant %s", spec.Domain, other.id)
		}
		t = &tenant{id: spec.TenantID, domain: spec.Domain, apps: map[string]*app{}}
		e.tenants[strings.ToLower(t.id)] = t
		e.tenants[strings.ToLower(t.domain)] = t
	}
	var out []UserSpec
	for _, us := range spec.Users {
		if us.Mail == "" {
			return nil, fmt.Errorf("a user needs a mail address")
		}
		if us.ID == "" {
			us.ID = newGUID()
		}
		if e.userIdx[strings.ToLower(us.Mail)] != nil || e.userIdx[strings.ToLower(us.ID)] != nil {
			return nil, fmt.Errorf("user %s already exists", us.Mail)
		}
		u := &user{tenant: t, id: us.ID, mail: us.Mail, displayName: us.DisplayName, noMailbox: us.Mailbox != nil && !*us.Mailbox,
			events: map[string]*event{}, restIDs: map[string]string{}, txn: map[string]string{}, txnBody: map[string]string{}}
		if us.MailboxReadyAfterSeconds > 0 {
			u.mailboxReadyAt = e.now().Add(time.Duration(us.MailboxReadyAfterSeconds) * time.Second)
		}
		e.users[u.id] = u
		e.userIdx[strings.ToLower(u.id)] = u
		e.userIdx[strings.ToLower(u.mail)] = u
		out = append(out, us)
	}
	for _, as := range spec.Apps {
		if as.ClientID == "" || as.Secret == "" {
			return nil, fmt.Errorf("an app needs clientId and secret")
		}
		a := &app{tenant: t, clientID: as.ClientID, secret: as.Secret, roles: slices.Clone(as.Roles)}
		if as.SecretExpiresAt != nil {
			a.secretExpires = *as.SecretExpiresAt
		}
		if as.AllowedMailboxes != nil {
			a.allowed = map[string]bool{}
			for _, m := range as.AllowedMailboxes {
				u := e.findUserLocked(t, m)
				if u == nil {
					return nil, fmt.Errorf("allowed mailbox %s is not a user of the tenant", m)
				}
				a.allowed[u.id] = true
			}
		}
		t.apps[strings.ToLower(a.clientID)] = a
	}
	return out, nil
}

func (e *Emulator) ctlTenants(w http.ResponseWriter, r *http.Request) {
	var spec TenantSpec
	if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
		ctlError(w, http.StatusBadRequest, "invalid JSON: %v", err)
		return
	}
	users, err := e.AddTenant(spec)
	if err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	e.mu.Lock()
	var t *tenant
	if spec.TenantID != "" {
		t = e.tenants[strings.ToLower(spec.TenantID)]
	}
	e.mu.Unlock()
	resp := map[string]any{"users": users}
	if t != nil {
		resp["tenantId"], resp["domain"] = t.id, t.domain
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (e *Emulator) ctlUser(w http.ResponseWriter, r *http.Request) *user {
	e.mu.Lock()
	u := e.findUserLocked(nil, r.PathValue("uid"))
	e.mu.Unlock()
	if u == nil {
		ctlError(w, http.StatusNotFound, "no mailbox %s", r.PathValue("uid"))
	}
	return u
}

var ownerView = renderOpts{immutable: true, expand: func(extProp) bool { return true }}

func (e *Emulator) ctlCreateEvent(w http.ResponseWriter, r *http.Request) {
	u := e.ctlUser(w, r)
	if u == nil {
		return
	}
	body, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	ev, ierr := e.createEventFor(u, body)
	if ierr != nil {
		ctlError(w, http.StatusBadRequest, "%s", ierr.msg)
		return
	}
	writeJSON(w, http.StatusCreated, ev.render(ownerView))
}

// CreateEvent makes an event in a mailbox as its owner would in Outlook
// (Graph event JSON, decoded) and notifies subscribers: what POST
// /_emulator/users/{idOrMail}/events does, for in-process callers that make
// many (a benchmark seeding 150,000).
func (e *Emulator) CreateEvent(idOrMail string, body map[string]any) error {
	e.mu.Lock()
	u := e.findUserLocked(nil, idOrMail)
	e.mu.Unlock()
	if u == nil {
		return fmt.Errorf("no mailbox %s", idOrMail)
	}
	if _, ierr := e.createEventFor(u, body); ierr != nil {
		return ierr
	}
	return nil
}

func (e *Emulator) ctlUpdateEvent(w http.ResponseWriter, r *http.Request) {
	u := e.ctlUser(w, r)
	if u == nil {
		return
	}
	body, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	ev, status, ierr := e.updateEventFor(u, r.PathValue("eid"), body, "")
	if ierr != nil {
		ctlError(w, status, "%s", ierr.msg)
		return
	}
	writeJSON(w, http.StatusOK, ev.render(ownerView))
}

func (e *Emulator) ctlDeleteEvent(w http.ResponseWriter, r *http.Request) {
	u := e.ctlUser(w, r)
	if u == nil {
		return
	}
	if !e.deleteEventFor(u, r.PathValue("eid")) {
		ctlError(w, http.StatusNotFound, "no event %s", r.PathValue("eid"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ctlDismissReminder dismisses the event's reminder as its owner would in
// Outlook: a new changeKey, nothing visible changed.
func (e *Emulator) ctlDismissReminder(w http.ResponseWriter, r *http.Request) {
	u := e.ctlUser(w, r)
	if u == nil {
		return
	}
	if !e.dismissReminderFor(u, r.PathValue("eid")) {
		ctlError(w, http.StatusNotFound, "no event %s", r.PathValue("eid"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ctlPatchUser changes a user's mailbox: {"mailbox": true} gives a user an
// Exchange Online mailbox now (a licence assigned, provisioning done),
// false takes it away.
func (e *Emulator) ctlPatchUser(w http.ResponseWriter, r *http.Request) {
	u := e.ctlUser(w, r)
	if u == nil {
		return
	}
	var body struct {
		Mailbox *bool `json:"mailbox"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil || body.Mailbox == nil {
		ctlError(w, http.StatusBadRequest, "body must be {\"mailbox\": true|false}")
		return
	}
	e.mu.Lock()
	u.noMailbox, u.mailboxReadyAt = !*body.Mailbox, time.Time{}
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) ctlListEvents(w http.ResponseWriter, r *http.Request) {
	u := e.ctlUser(w, r)
	if u == nil {
		return
	}
	e.mu.Lock()
	evs := make([]*event, 0, len(u.events))
	for _, ev := range u.events {
		evs = append(evs, ev)
	}
	slices.SortFunc(evs, func(a, b *event) int { return int(a.seq) - int(b.seq) })
	out := make([]any, len(evs))
	for i, ev := range evs {
		out[i] = ev.render(ownerView)
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (e *Emulator) ctlSubscriptions(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.purgeExpiredLocked()
	out := []any{}
	for _, s := range e.subs {
		m := s.render()
		m["mailbox"] = s.user.id
		m["needsReauthorization"] = s.needsReauth
		out = append(out, m)
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (e *Emulator) ctlLifecycle(w http.ResponseWriter, r *http.Request) {
	var body struct {
		LifecycleEvent string `json:"lifecycleEvent"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		ctlError(w, http.StatusBadRequest, "invalid JSON: %v", err)
		return
	}
	if err := e.lifecycle(r.PathValue("sid"), body.LifecycleEvent); err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// Fault is the body of POST /_emulator/faults.
type Fault struct {
	Kind              string `json:"kind"`
	Mailbox           string `json:"mailbox,omitempty"`
	Count             int    `json:"count,omitempty"`
	RetryAfterSeconds int    `json:"retryAfterSeconds,omitempty"`
	MS                int    `json:"ms,omitempty"`
	Status            int    `json:"status,omitempty"`
	// Method limits a mailbox fault to calls with this HTTP method.
	Method string `json:"method,omitempty"`
	// Form is how staleDeltaTokens answers (concepts/delta-query-overview.md):
	// "" 410 syncStateNotFound; "gone" 410 with a Location header holding
	// the initial query; "syncStateNotFound" or "resyncRequired" 400 with
	// that code; "unknown" the tokens are forgotten (400, invalid token).
	Form string `json:"form,omitempty"`
	// Silent makes dropNotifications drop without the "missed" lifecycle
	// notification: Graph does not promise either (users report lost and
	// day-late notifications with no word of it).
	Silent bool `json:"silent,omitempty"`
}

// AddFault arms a fault, for in-process callers.
func (e *Emulator) AddFault(f Fault) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	count := f.Count
	if count <= 0 {
		count = 1
	}
	switch f.Kind {
	case "throttle", "serverError", "slow", "dropConnection":
		u := e.findUserLocked(nil, f.Mailbox)
		if u == nil {
			return fmt.Errorf("%s: no mailbox %q", f.Kind, f.Mailbox)
		}
		mf := &mailboxFault{kind: f.Kind, count: count, retryAfter: f.RetryAfterSeconds, delay: time.Duration(f.MS) * time.Millisecond, method: strings.ToUpper(f.Method)}
		switch f.Kind {
		case "throttle":
			mf.retryAfter = max(mf.retryAfter, 1)
		case "serverError":
			mf.status = f.Status
			if mf.status == 0 {
				mf.status = http.StatusInternalServerError
			}
			if mf.status != http.StatusInternalServerError && mf.status != http.StatusServiceUnavailable {
				return fmt.Errorf("serverError: status must be 500 or 503, got %d", f.Status)
			}
		case "slow":
			if mf.delay <= 0 {
				return fmt.Errorf("slow: ms must be positive")
			}
		}
		e.faults.mailbox[u.id] = mf
	case "dropNotifications":
		e.faults.dropNotifications += count
		e.faults.dropSilently = f.Silent
	case "delayNotifications":
		e.faults.delayCount, e.faults.delayBy = count, time.Duration(f.MS)*time.Millisecond
	case "failHandshake":
		e.faults.failHandshake += count
	case "staleDeltaTokens":
		switch f.Form {
		case "", "gone", "syncStateNotFound", "resyncRequired":
		case "unknown":
			clear(e.deltaTokens)
			clear(e.skipTokens)
			return nil
		default:
			return fmt.Errorf("staleDeltaTokens: unknown form %q", f.Form)
		}
		for _, st := range e.deltaTokens {
			st.stale, st.staleForm = true, f.Form
		}
		for _, sp := range e.skipTokens {
			sp.round.stale, sp.round.staleForm = true, f.Form
		}
	case "dropResponse":
		e.faults.dropResponse += count
	case "replayDelta":
		e.faults.replayDelta += count
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	return nil
}

func (e *Emulator) ctlAddFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
		ctlError(w, http.StatusBadRequest, "invalid JSON: %v", err)
		return
	}
	if err := e.AddFault(f); err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ClearFaults disarms every fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	e.faults = faults{mailbox: map[string]*mailboxFault{}}
	e.mu.Unlock()
}

func (e *Emulator) ctlClearFaults(w http.ResponseWriter, r *http.Request) {
	e.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) ctlRequests(w http.ResponseWriter, r *http.Request) {
	since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	recs := e.Requests(since)
	if recs == nil {
		recs = []RequestRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": recs})
}

func (e *Emulator) ctlState(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.purgeExpiredLocked()
	tenants := []any{}
	seen := map[*tenant]bool{}
	for _, t := range e.tenants {
		if seen[t] {
			continue
		}
		seen[t] = true
		var apps, users []any
		for _, a := range t.apps {
			apps = append(apps, map[string]any{"clientId": a.clientID, "roles": a.roles, "secretExpiresAt": a.secretExpires})
		}
		for _, u := range e.users {
			if u.tenant == t {
				users = append(users, map[string]any{"id": u.id, "mail": u.mail, "displayName": u.displayName, "events": len(u.events)})
			}
		}
		tenants = append(tenants, map[string]any{"tenantId": t.id, "domain": t.domain, "apps": apps, "users": users})
	}
	state := map[string]any{"tenants": tenants, "subscriptions": len(e.subs), "deltaTokens": len(e.deltaTokens), "requests": e.reqSeq}
	e.mu.Unlock()
	state["pendingNotifications"] = e.notifier.pending()
	writeJSON(w, http.StatusOK, state)
}

// Reset forgets everything.
func (e *Emulator) Reset() {
	e.mu.Lock()
	e.resetLocked()
	e.mu.Unlock()
	e.notifier.clear()
}

func (e *Emulator) ctlReset(w http.ResponseWriter, r *http.Request) {
	e.Reset()
	w.WriteHeader(http.StatusNoContent)
}
