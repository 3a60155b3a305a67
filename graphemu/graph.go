package graphemu

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

type graphHandler func(w http.ResponseWriter, r *http.Request, p principal)

func (e *Emulator) routeGraph(mux *http.ServeMux) {
	h := func(pattern string, fn graphHandler) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			p, ok := e.authenticate(w, r)
			if !ok {
				return
			}
			fn(w, r, p)
		})
	}
	h("GET /v1.0/users/{uid}", e.getUser)
	h("GET /v1.0/users/{uid}/calendar", e.getCalendar)
	for _, base := range []string{"/v1.0/users/{uid}/events", "/v1.0/users/{uid}/calendar/events"} {
		h("GET "+base, e.listEvents)
		h("POST "+base, e.createEvent)
		h("GET "+base+"/{eid}", e.getEvent)
		h("PATCH "+base+"/{eid}", e.updateEvent)
		h("DELETE "+base+"/{eid}", e.deleteEvent)
		h("GET "+base+"/{eid}/instances", e.listInstances)
		h("POST "+base+"/{eid}/dismissReminder", e.dismissReminder)
	}
	for _, p := range []string{"calendarView", "calendarview", "calendar/calendarView"} {
		h("GET /v1.0/users/{uid}/"+p, e.calendarView)
		h("GET /v1.0/users/{uid}/"+p+"/delta", e.delta)
		h("GET /v1.0/users/{uid}/"+p+"/delta()", e.delta)
	}
	h("POST /v1.0/subscriptions", e.createSubscription)
	h("GET /v1.0/subscriptions", e.listSubscriptions)
	h("GET /v1.0/subscriptions/{sid}", e.getSubscription)
	h("PATCH /v1.0/subscriptions/{sid}", e.updateSubscription)
	h("DELETE /v1.0/subscriptions/{sid}", e.deleteSubscription)
	h("POST /v1.0/subscriptions/{sid}/reauthorize", e.reauthorizeSubscription)
	h("POST /v1.0/$batch", e.batch)
	mux.HandleFunc("/v1.0/", func(w http.ResponseWriter, r *http.Request) {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", strings.TrimPrefix(r.URL.Path, "/v1.0/")))
	})
}

// findUserLocked resolves an id, userPrincipalName or mail within tenant t.
func (e *Emulator) findUserLocked(t *tenant, idOrMail string) *user {
	u := e.userIdx[strings.ToLower(idOrMail)]
	if u == nil || (t != nil && u.tenant != t) {
		return nil
	}
	return u
}

// mailbox resolves {uid} for a calendar call, enforces permissions, the
// app's access policy and throttling. release must be called when done.
func (e *Emulator) mailbox(w http.ResponseWriter, r *http.Request, p principal, write bool) (u *user, release func(), ok bool) {
	uid := r.PathValue("uid")
	e.mu.Lock()
	u = e.findUserLocked(p.tenant, uid)
	e.mu.Unlock()
	if u == nil {
		writeGraphError(w, r, http.StatusNotFound, "ErrorInvalidUser", fmt.Sprintf("The requested user '%s' is invalid.", uid))
		return nil, nil, false
	}
	if rec, isRec := r.Context().Value(mailboxKey{}).(*statusRecorder); isRec {
		rec.mailbox = u.id
	}
	need := []string{"Calendars.ReadWrite"}
	if !write {
		need = append(need, "Calendars.Read", "Calendars.ReadBasic")
	}
	if !p.has(need...) {
		writeGraphError(w, r, http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
		return nil, nil, false
	}
	// A user without a usable mailbox: the answers users report from
	// Graph (no Exchange Online licence, a guest, on-premises:
	// MailboxNotEnabledForRESTAPI — MicrosoftDocs/azure-docs#85666,
	// microsoft-graph-docs#8520, #6519; a mailbox that does not exist
	// yet: ResourceNotFound, "Resource could not be discovered" —
	// microsoft-graph-docs#5143, answered by Microsoft).
	e.mu.Lock()
	noMailbox, readyAt := u.noMailbox, u.mailboxReadyAt
	e.mu.Unlock()
	if noMailbox {
		writeGraphError(w, r, http.StatusNotFound, "MailboxNotEnabledForRESTAPI", "REST API is not yet supported for this mailbox.")
		return nil, nil, false
	}
	if !readyAt.IsZero() && e.now().Before(readyAt) {
		writeGraphError(w, r, http.StatusNotFound, "ResourceNotFound", "Resource could not be discovered.")
		return nil, nil, false
	}
	if p.app.allowed != nil && !p.app.allowed[u.id] {
		writeGraphError(w, r, http.StatusForbidden, "ErrorAccessDenied", "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.")
		return nil, nil, false
	}
	release, ok = e.admit(w, r, p.app, u)
	return u, release, ok
}

func (e *Emulator) getUser(w http.ResponseWriter, r *http.Request, p principal) {
	uid := r.PathValue("uid")
	if !p.has("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All") {
		writeGraphError(w, r, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	e.mu.Lock()
	u := e.findUserLocked(p.tenant, uid)
	e.mu.Unlock()
	if u == nil {
		writeGraphError(w, r, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", uid))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context":    baseURL(r) + "/v1.0/$metadata#users/$entity",
		"businessPhones":    []string{},
		"displayName":       u.displayName,
		"givenName":         nil,
		"jobTitle":          nil,
		"mail":              u.mail,
		"mobilePhone":       nil,
		"officeLocation":    nil,
		"preferredLanguage": "ja-JP",
		"surname":           nil,
		"userPrincipalName": u.mail,
		"id":                u.id,
	})
}

func (e *Emulator) getCalendar(w http.ResponseWriter, r *http.Request, p principal) {
	u, release, ok := e.mailbox(w, r, p, false)
	if !ok {
		return
	}
	defer release()
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context":                baseURL(r) + "/v1.0/$metadata#users('" + u.id + "')/calendar/$entity",
		"id":                            "AAMkAGCal" + u.id,
		"name":                          "Calendar",
		"color":                         "auto",
		"hexColor":                      "",
		"isDefaultCalendar":             true,
		"changeKey":                     "nfZyf7VcrEKLNoU37KWlkQAAA0x0+w==",
		"canShare":                      true,
		"canViewPrivateItems":           true,
		"canEdit":                       true,
		"allowedOnlineMeetingProviders": []string{"teamsForBusiness"},
		"defaultOnlineMeetingProvider":  "teamsForBusiness",
		"isTallyingResponses":           true,
		"isRemovable":                   false,
		"owner":                         map[string]any{"name": u.displayName, "address": u.mail},
	})
}

// prefs holds the Prefer header values Graph honours here.
type prefs struct {
	immutable   bool
	zone        string
	loc         *time.Location
	maxPageSize int
}

func parsePrefer(r *http.Request) prefs {
	var p prefs
	for _, h := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(h, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			v = strings.Trim(strings.TrimSpace(v), `"`)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "idtype":
				p.immutable = strings.EqualFold(v, "ImmutableId")
			case "outlook.timezone":
				if loc, ok := resolveZone(v); ok {
					p.zone, p.loc = v, loc
				}
			case "odata.maxpagesize":
				p.maxPageSize, _ = strconv.Atoi(v)
			}
		}
	}
	return p
}

func (p prefs) render() renderOpts {
	return renderOpts{immutable: p.immutable, zone: p.loc, zoneName: p.zone}
}

func applied(w http.ResponseWriter, p prefs) {
	var parts []string
	if p.zone != "" {
		parts = append(parts, fmt.Sprintf("outlook.timezone=%q", p.zone))
	}
	if p.immutable {
		parts = append(parts, `IdType="ImmutableId"`)
	}
	if len(parts) > 0 {
		w.Header().Set("Preference-Applied", strings.Join(parts, ", "))
	}
}

var (
	anyExtPropFilter = regexp.MustCompile(`^singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*(\w+)/id\s+eq\s+'((?:[^']|'')*)'\s+and\s+(\w+)/value\s+eq\s+'((?:[^']|'')*)'\s*\)$`)
	expandExtProps   = regexp.MustCompile(`^singleValueExtendedProperties(?:\(\s*\$filter\s*=\s*id\s+eq\s+'((?:[^']|'')*)'\s*\))?$`)
)

func unquote(s string) string { return strings.ReplaceAll(s, "''", "'") }

// parseExpand understands $expand=singleValueExtendedProperties($filter=id eq '…').
func parseExpand(q url.Values) (func(extProp) bool, *inputError) {
	raw := strings.TrimSpace(q.Get("$expand"))
	if raw == "" {
		return nil, nil
	}
	m := expandExtProps.FindStringSubmatch(raw)
	if m == nil {
		return nil, &inputError{code: "BadRequest", msg: fmt.Sprintf("Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.event'.", raw)}
	}
	if m[1] == "" {
		return func(extProp) bool { return true }, nil
	}
	id := unquote(m[1])
	return func(p extProp) bool { return sameExtPropID(p.ID, id) }, nil
}

func (e *Emulator) listEvents(w http.ResponseWriter, r *http.Request, p principal) {
	u, release, ok := e.mailbox(w, r, p, false)
	if !ok {
		return
	}
	defer release()
	q := r.URL.Query()
	pr := parsePrefer(r)
	opts := pr.render()
	var ierr *inputError
	if opts.expand, ierr = parseExpand(q); ierr != nil {
		writeGraphError(w, r, http.StatusBadRequest, ierr.code, ierr.msg)
		return
	}
	match := func(*event) bool { return true }
	if f := strings.TrimSpace(q.Get("$filter")); f != "" {
		m := anyExtPropFilter.FindStringSubmatch(f)
		if m == nil || m[1] != m[2] || m[1] != m[4] {
			writeGraphError(w, r, http.StatusBadRequest, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
			return
		}
		id, val := unquote(m[3]), unquote(m[5])
		match = func(ev *event) bool {
			return slices.ContainsFunc(ev.extProps, func(x extProp) bool { return sameExtPropID(x.ID, id) && x.Value == val })
		}
	}
	e.mu.Lock()
	var evs []*event
	for _, ev := range u.events {
		if match(ev) {
			evs = append(evs, ev.clone())
		}
	}
	e.mu.Unlock()
	slices.SortFunc(evs, func(a, b *event) int { return a.start.Compare(b.start)*2 + strings.Compare(a.id, b.id)/2 })
	writeEventPage(w, r, pr, opts, evs, baseURL(r)+"/v1.0/$metadata#users('"+u.id+"')/events")
}

// writeEventPage answers one $top/$skip page of evs (sorted already), with
// a nextLink when more follow.
func writeEventPage(w http.ResponseWriter, r *http.Request, pr prefs, opts renderOpts, evs []*event, context string) {
	q := r.URL.Query()
	top := 10
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Invalid $top value.")
			return
		}
		top = n
	}
	skip, _ := strconv.Atoi(q.Get("$skip"))
	total := len(evs)
	skip = max(0, min(skip, total))
	end := min(skip+top, total)
	page := make([]any, 0, end-skip)
	for _, ev := range evs[skip:end] {
		page = append(page, ev.render(opts))
	}
	resp := map[string]any{"@odata.context": context, "value": page}
	if end < total {
		next := *r.URL
		nq := next.Query()
		nq.Set("$skip", strconv.Itoa(end))
		nq.Set("$top", strconv.Itoa(top))
		next.RawQuery = nq.Encode()
		resp["@odata.nextLink"] = baseURL(r) + next.RequestURI()
	}
	applied(w, pr)
	writeJSON(w, http.StatusOK, resp)
}

// viewWindow reads the startDateTime/endDateTime a calendarView or
// instances call requires (api-reference/v1.0/api/user-list-calendarview.md,
// event-list-instances.md).
func viewWindow(w http.ResponseWriter, r *http.Request) (start, end time.Time, ok bool) {
	q := r.URL.Query()
	if q.Get("startDateTime") == "" || q.Get("endDateTime") == "" {
		writeGraphError(w, r, http.StatusBadRequest, "ErrorInvalidParameter", "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.")
		return start, end, false
	}
	start, err1 := parseWindow(q.Get("startDateTime"))
	end, err2 := parseWindow(q.Get("endDateTime"))
	if err1 != nil || err2 != nil || !end.After(start) {
		writeGraphError(w, r, http.StatusBadRequest, "ErrorInvalidParameter", "The value of StartDateTime or EndDateTime is not valid.")
		return start, end, false
	}
	return start, end, true
}

// viewLocked is u's calendar view of [start, end): single instances and
// the occurrences and exceptions of series, never a series master
// (concepts/delta-query-events.md), in start order.
func viewLocked(u *user, start, end time.Time) []*event {
	var out []*event
	for _, ev := range u.events {
		out = append(out, ev.inView(start, end)...)
	}
	slices.SortFunc(out, func(a, b *event) int { return a.start.Compare(b.start)*2 + strings.Compare(a.id, b.id)/2 })
	return out
}

func (e *Emulator) calendarView(w http.ResponseWriter, r *http.Request, p principal) {
	u, release, ok := e.mailbox(w, r, p, false)
	if !ok {
		return
	}
	defer release()
	start, end, ok := viewWindow(w, r)
	if !ok {
		return
	}
	pr := parsePrefer(r)
	e.mu.Lock()
	evs := viewLocked(u, start, end)
	e.mu.Unlock()
	writeEventPage(w, r, pr, pr.render(), evs, baseURL(r)+"/v1.0/$metadata#users('"+u.id+"')/calendarView")
}

func (e *Emulator) listInstances(w http.ResponseWriter, r *http.Request, p principal) {
	u, release, ok := e.mailbox(w, r, p, false)
	if !ok {
		return
	}
	defer release()
	start, end, ok := viewWindow(w, r)
	if !ok {
		return
	}
	pr := parsePrefer(r)
	e.mu.Lock()
	ev := lookupEventLocked(u, r.PathValue("eid"))
	var evs []*event
	if ev != nil {
		evs = ev.inView(start, end)
	}
	e.mu.Unlock()
	if ev == nil {
		notFoundEvent(w, r)
		return
	}
	writeEventPage(w, r, pr, pr.render(), evs, baseURL(r)+"/v1.0/$metadata#users('"+u.id+"')/events('"+r.PathValue("eid")+"')/instances")
}

func readJSONBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Unable to read the request body.")
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
		return nil, false
	}
	return m, true
}

func (e *Emulator) createEvent(w http.ResponseWriter, r *http.Request, p principal) {
	u, release, ok := e.mailbox(w, r, p, true)
	if !ok {
		return
	}
	defer release()
	body, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	ev, ierr := e.createEventFor(u, body)
	if ierr != nil {
		writeGraphError(w, r, http.StatusBadRequest, ierr.code, ierr.msg)
		return
	}
	w.Header().Set("Location", baseURL(r)+"/v1.0/users/"+u.id+"/events/"+ev.idFor(parsePrefer(r).immutable))
	e.writeWrittenEvent(w, r, u, ev, http.StatusCreated)
}

// writeWrittenEvent answers a successful create or update, unless a
// dropResponse fault says the answer is lost.
func (e *Emulator) writeWrittenEvent(w http.ResponseWriter, r *http.Request, u *user, ev *event, status int) {
	if e.takeDropResponse() {
		panic(http.ErrAbortHandler)
	}
	pr := parsePrefer(r)
	opts := pr.render()
	opts.expand, _ = parseExpand(r.URL.Query())
	applied(w, pr)
	w.Header().Set("ETag", fmt.Sprintf("W/\"%s\"", ev.changeKey))
	out := ev.render(opts)
	out["@odata.context"] = baseURL(r) + "/v1.0/$metadata#users('" + u.id + "')/events/$entity"
	writeJSON(w, status, out)
}

// createEventFor creates an event in u's calendar (or returns the event an
// earlier create with the same transactionId made) and notifies.
func (e *Emulator) createEventFor(u *user, body map[string]any) (*event, *inputError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	txn, _ := body["transactionId"].(string)
	hash := bodyHash(body)
	if txn != "" {
		if id, ok := u.txn[txn]; ok {
			if ev := u.events[id]; ev != nil {
				// A retry of the same create returns the event it made; the
				// same transactionId with another body is refused, as
				// Exchange does (ErrorDuplicateTransactionId, seen in the
				// wild: alcionai/corso#2490 — the status and code are not
				// in Microsoft's reference).
				if u.txnBody[txn] != hash {
					return nil, &inputError{code: "ErrorDuplicateTransactionId",
						msg: "The transactionId has already been used to create an item with different content."}
				}
				return ev.clone(), nil
			}
		}
	}
	now := e.now()
	ev := &event{
		id: newItemID("AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"), restID: newItemID("AAMkAGI2TG93AAA="),
		iCalUID: newICalUID(), changeKey: newChangeKey(), created: now, modified: now, transactionID: txn,
		bodyType: "text", showAs: "busy", sensitivity: "normal", importance: "normal", reminder: 15,
		isReminderOn: true, organizerName: u.displayName, organizerMail: u.mail,
	}
	if ierr := ev.apply(body, true); ierr != nil {
		return nil, ierr
	}
	e.seq++
	ev.seq = e.seq
	u.events[ev.id] = ev
	u.restIDs[ev.restID] = ev.id
	if txn != "" {
		u.txn[txn] = ev.id
		u.txnBody[txn] = hash
	}
	e.notifyLocked(u, ev, "created")
	return ev.clone(), nil
}

// lookupEventLocked finds an event by immutable or REST id.
func lookupEventLocked(u *user, id string) *event {
	if ev := u.events[id]; ev != nil {
		return ev
	}
	if imm, ok := u.restIDs[id]; ok {
		return u.events[imm]
	}
	return nil
}

func notFoundEvent(w http.ResponseWriter, r *http.Request) {
	writeGraphError(w, r, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
}

func (e *Emulator) getEvent(w http.ResponseWriter, r *http.Request, p principal) {
	u, release, ok := e.mailbox(w, r, p, false)
	if !ok {
		return
	}
	defer release()
	pr := parsePrefer(r)
	opts := pr.render()
	var ierr *inputError
	if opts.expand, ierr = parseExpand(r.URL.Query()); ierr != nil {
		writeGraphError(w, r, http.StatusBadRequest, ierr.code, ierr.msg)
		return
	}
	e.mu.Lock()
	ev := lookupEventLocked(u, r.PathValue("eid"))
	if ev == nil {
		if master, d, ok := lookupInstanceLocked(u, r.PathValue("eid")); ok {
			ev = master.instanceOn(d)
		}
	}
	var out map[string]any
	if ev != nil {
		out = ev.render(opts)
	}
	e.mu.Unlock()
	if ev == nil {
		notFoundEvent(w, r)
		return
	}
	out["@odata.context"] = baseURL(r) + "/v1.0/$metadata#users('" + u.id + "')/events/$entity"
	applied(w, pr)
	writeJSON(w, http.StatusOK, out)
}

// ifMatchOK compares an If-Match header with the event's changeKey.
func ifMatchOK(h string, ev *event) bool {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return true
	}
	h = strings.TrimPrefix(h, "W/")
	return strings.Trim(h, `"`) == ev.changeKey
}

func (e *Emulator) updateEvent(w http.ResponseWriter, r *http.Request, p principal) {
	u, release, ok := e.mailbox(w, r, p, true)
	if !ok {
		return
	}
	defer release()
	body, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	ev, status, ierr := e.updateEventFor(u, r.PathValue("eid"), body, r.Header.Get("If-Match"))
	if ierr != nil {
		writeGraphError(w, r, status, ierr.code, ierr.msg)
		return
	}
	e.writeWrittenEvent(w, r, u, ev, http.StatusOK)
}

func (e *Emulator) updateEventFor(u *user, id string, body map[string]any, ifMatch string) (*event, int, *inputError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := lookupEventLocked(u, id)
	if ev == nil {
		if master, d, ok := lookupInstanceLocked(u, id); ok {
			return e.updateInstanceLocked(u, master, d, body, ifMatch)
		}
		return nil, http.StatusNotFound, &inputError{code: "ErrorItemNotFound", msg: "The specified object was not found in the store."}
	}
	if !ifMatchOK(ifMatch, ev) {
		return nil, http.StatusPreconditionFailed, &inputError{code: "ErrorIrresolvableConflict",
			msg: "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item."}
	}
	next := ev.clone()
	if _, has := body["transactionId"]; has {
		delete(body, "transactionId") // read-only after creation
	}
	if ierr := next.apply(body, false); ierr != nil {
		return nil, http.StatusBadRequest, ierr
	}
	e.seq++
	next.seq = e.seq
	next.changeKey = newChangeKey()
	next.modified = e.now()
	u.events[ev.id] = next
	e.notifyLocked(u, next, "updated")
	return next.clone(), http.StatusOK, nil
}

func (e *Emulator) deleteEvent(w http.ResponseWriter, r *http.Request, p principal) {
	u, release, ok := e.mailbox(w, r, p, true)
	if !ok {
		return
	}
	defer release()
	if !e.deleteEventFor(u, r.PathValue("eid")) {
		notFoundEvent(w, r)
		return
	}
	if e.takeDropResponse() {
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) deleteEventFor(u *user, id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := lookupEventLocked(u, id)
	if ev == nil {
		if master, d, ok := lookupInstanceLocked(u, id); ok {
			e.cancelInstanceLocked(u, master, d)
			return true
		}
		return false
	}
	delete(u.events, ev.id)
	delete(u.restIDs, ev.restID)
	e.seq++
	e.notifyLocked(u, ev, "deleted")
	return true
}

// bodyHash identifies a create request's content (maps marshal with sorted
// keys, so equal bodies hash alike).
func bodyHash(body map[string]any) string {
	b, _ := json.Marshal(body)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// dismissReminder is event: dismissReminder (api-reference/v1.0/api/
// event-dismissreminder.md, listed under the event resource's methods): it
// answers 200 with no body. Exchange records the dismissal on the item, so
// its changeKey changes while no property the API shows does — the case a
// sync must not take for a user's edit.
func (e *Emulator) dismissReminder(w http.ResponseWriter, r *http.Request, p principal) {
	u, release, ok := e.mailbox(w, r, p, true)
	if !ok {
		return
	}
	defer release()
	if !e.dismissReminderFor(u, r.PathValue("eid")) {
		notFoundEvent(w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (e *Emulator) dismissReminderFor(u *user, id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := lookupEventLocked(u, id)
	if ev == nil {
		return false
	}
	next := ev.clone()
	e.seq++
	next.seq, next.changeKey, next.modified = e.seq, newChangeKey(), e.now()
	u.events[ev.id] = next
	e.notifyLocked(u, next, "updated")
	return true
}
