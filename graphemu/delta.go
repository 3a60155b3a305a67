package graphemu

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// deltaState is what a deltatoken stands for: a mailbox's calendar view
// window, the change sequence it has seen, and which events were in it.
type deltaState struct {
	user          *user
	start, end    time.Time
	watermark     uint64
	known         map[string]string // immutable id -> REST id of what was in view
	prevWatermark uint64
	prevKnown     map[string]string
	stale         bool
	staleForm     string // how a stale token is answered (Fault.Form)
}

// deltaRound is a computed round being paged through with skiptokens.
type deltaRound struct {
	user      *user
	items     []*deltaItem
	next      *deltaState
	stale     bool
	staleForm string
}

// skipPage is where a nextLink resumes.
type skipPage struct {
	round  *deltaRound
	offset int
}

type deltaItem struct {
	ev      *event
	removed string // id when removed
	restID  string
}

func (e *Emulator) delta(w http.ResponseWriter, r *http.Request, p principal) {
	u, release, ok := e.mailbox(w, r, p, false)
	if !ok {
		return
	}
	defer release()
	q := r.URL.Query()
	pr := parsePrefer(r)
	pageSize := pr.maxPageSize
	if pageSize <= 0 || pageSize > 1000 {
		pageSize = 10
	}

	// A first round names its window; later ones carry it in their token.
	var winStart, winEnd time.Time
	if q.Get("$skiptoken") == "" && q.Get("$deltatoken") == "" {
		if winStart, winEnd, ok = viewWindow(w, r); !ok {
			return
		}
	}

	e.mu.Lock()
	var round *deltaRound
	offset := 0
	switch {
	case q.Get("$skiptoken") != "":
		sp, found := e.skipTokens[q.Get("$skiptoken")]
		round, offset = sp.round, sp.offset
		if !found || round.user != u {
			e.mu.Unlock()
			writeGraphError(w, r, http.StatusBadRequest, "ErrorInvalidUrlQuery", "The skip token is invalid.")
			return
		}
	case q.Get("$deltatoken") != "":
		st := e.deltaTokens[q.Get("$deltatoken")]
		if st == nil || st.user != u {
			e.mu.Unlock()
			writeGraphError(w, r, http.StatusBadRequest, "ErrorInvalidUrlQuery", "The delta token is invalid.")
			return
		}
		if st.stale {
			e.mu.Unlock()
			writeStale(w, r, st.staleForm, st.start, st.end)
			return
		}
		from := st
		if e.faults.replayDelta > 0 {
			e.faults.replayDelta--
			from = &deltaState{user: st.user, start: st.start, end: st.end, watermark: st.prevWatermark, known: st.prevKnown}
		}
		round = e.computeRoundLocked(u, from)
	default:
		round = e.computeRoundLocked(u, &deltaState{user: u, start: winStart, end: winEnd, known: map[string]string{}})
	}
	if round.stale {
		e.mu.Unlock()
		st := round.next
		if st == nil {
			st = &deltaState{}
		}
		writeStale(w, r, round.staleForm, st.start, st.end)
		return
	}
	end := min(offset+pageSize, len(round.items))
	page := make([]any, 0, end-offset)
	opts := pr.render()
	for _, it := range round.items[offset:end] {
		if it.ev != nil {
			page = append(page, it.ev.render(opts))
			continue
		}
		id := it.removed
		if !pr.immutable {
			id = it.restID
		}
		page = append(page, map[string]any{"@odata.type": "#microsoft.graph.event", "id": id, "@removed": map[string]any{"reason": "deleted"}})
	}
	link := baseURL(r) + r.URL.Path + "?"
	resp := map[string]any{
		"@odata.context": baseURL(r) + "/v1.0/$metadata#Collection(event)",
		"value":          page,
	}
	if end < len(round.items) {
		tok := randomID(24)
		e.skipTokens[tok] = skipPage{round: round, offset: end}
		resp["@odata.nextLink"] = link + url.Values{"$skiptoken": {tok}}.Encode()
	} else {
		tok := randomID(24)
		e.deltaTokens[tok] = round.next
		resp["@odata.deltaLink"] = link + url.Values{"$deltatoken": {tok}}.Encode()
	}
	e.mu.Unlock()
	applied(w, pr)
	writeJSON(w, http.StatusOK, resp)
}

func parseWindow(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.9999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Parse(time.RFC3339, s)
}

// computeRoundLocked lists what changed in u's window since from: the
// instances in view that changed or newly entered it, then @removed for
// those that left it — deleted, cancelled, or moved outside the window,
// which delta does not tell apart (api-reference/v1.0/api/event-delta.md).
func (e *Emulator) computeRoundLocked(u *user, from *deltaState) *deltaRound {
	round := &deltaRound{user: u}
	known := map[string]string{}
	var evs []*event
	for _, ev := range viewLocked(u, from.start, from.end) {
		known[ev.id] = ev.restID
		if _, seen := from.known[ev.id]; ev.seq > from.watermark || !seen {
			evs = append(evs, ev)
		}
	}
	slices.SortStableFunc(evs, func(a, b *event) int { return cmp.Compare(a.seq, b.seq) })
	for _, ev := range evs {
		round.items = append(round.items, &deltaItem{ev: ev})
	}
	var gone []string
	for id := range from.known {
		if _, still := known[id]; !still {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		round.items = append(round.items, &deltaItem{removed: id, restID: from.known[id]})
	}
	round.next = &deltaState{user: u, start: from.start, end: from.end, watermark: e.seq, known: known,
		prevWatermark: from.watermark, prevKnown: from.known}
	return round
}

// writeStale answers a delta round whose token can no longer be resumed, in
// the forms concepts/delta-query-overview.md names: 410 Gone with a
// Location header holding the initial query ("Synchronization reset"), or a
// 40X error with syncStateNotFound / resyncRequired ("Token duration").
func writeStale(w http.ResponseWriter, r *http.Request, form string, start, end time.Time) {
	switch form {
	case "gone":
		q := url.Values{"startDateTime": {start.UTC().Format(time.RFC3339)}, "endDateTime": {end.UTC().Format(time.RFC3339)}}
		w.Header().Set("Location", "https://"+r.Host+r.URL.Path+"?"+q.Encode())
		writeGraphError(w, r, http.StatusGone, "resyncRequired", "The delta token is no longer valid; restart the sync with the initial query.")
	case "syncStateNotFound":
		writeGraphError(w, r, http.StatusBadRequest, "syncStateNotFound", "The sync state generation is not found. Please restart the sync.")
	case "resyncRequired":
		writeGraphError(w, r, http.StatusBadRequest, "resyncRequired", "The delta token is no longer valid; the app must reset the sync state.")
	default:
		writeGraphError(w, r, http.StatusGone, "syncStateNotFound", "The sync state generation is not found. Please restart the sync.")
	}
}
