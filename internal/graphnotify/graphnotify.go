// Package graphnotify reads the body of a Microsoft Graph notification
// POST (change and lifecycle notifications) and the values calsync keeps of
// each: bounded, valid UTF-8, without NUL (Postgres text refuses it, and
// one such value would fail a whole group commit). It imports only the
// standard library, so its fuzz target compiles no more than that.
package graphnotify

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPerPost caps the entries one POST may carry.
const MaxPerPost = 1000

// Bounds of the values kept of a notification.
const (
	MaxResource   = 512
	MaxChangeType = 32
	MaxLifecycle  = 64
	MaxEventID    = 512
	maxETag       = 256
)

// Notification is one entry of a Graph notification POST
// (resources/changenotification.md).
type Notification struct {
	SubscriptionID string `json:"subscriptionId"`
	ClientState    string `json:"clientState"`
	ChangeType     string `json:"changeType"`
	Resource       string `json:"resource"`
	LifecycleEvent string `json:"lifecycleEvent"`
	TenantID       string `json:"tenantId"`
	// ResourceData names the event and its version for Outlook resources
	// (resources/resourcedata.md: id and @odata.etag).
	ResourceData struct {
		ID   string `json:"id"`
		ETag string `json:"@odata.etag"`
	} `json:"resourceData"`
}

// Parse reads a notification POST body ({"value": [...]}).
func Parse(body []byte) ([]Notification, error) {
	var p struct {
		Value []Notification `json:"value"`
	}
	if !utf8.Valid(body) {
		return nil, errors.New("body is not UTF-8")
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("parsing notifications: %w", err)
	}
	if p.Value == nil {
		return nil, errors.New("no value array")
	}
	if len(p.Value) > MaxPerPost {
		return nil, fmt.Errorf("%d notifications in one POST (limit %d)", len(p.Value), MaxPerPost)
	}
	return p.Value, nil
}

// Lifecycle is the lifecycle event named, or "unknown" for a value no
// Graph lifecycle event has: Graph's are short names (missed,
// subscriptionRemoved, reauthorizationRequired).
func (n Notification) Lifecycle() string {
	if len(n.LifecycleEvent) > MaxLifecycle || hasControl(n.LifecycleEvent) {
		return "unknown"
	}
	return n.LifecycleEvent
}

// Change is the change notification's changeType ("unknown" for a value
// no Graph change type has) and resource (cut at MaxResource bytes, on a
// character boundary, without NUL).
func (n Notification) Change() (changeType, resource string) {
	changeType, resource = n.ChangeType, n.Resource
	if len(resource) > MaxResource {
		resource = strings.ToValidUTF8(resource[:MaxResource], "")
	}
	resource = strings.ReplaceAll(resource, "\x00", "")
	if len(changeType) > MaxChangeType || hasControl(changeType) {
		changeType = "unknown"
	}
	return changeType, resource
}

// Version is the event id and changeKey a change notification names
// (@odata.etag is W/"<changeKey>"), or "" for both when it names none or
// the values are not plausible ones: they only ever let the worker skip a
// delta round when they match what calsync stored, so anything odd just
// means the round runs.
func (n Notification) Version() (eventID, changeKey string) {
	id, tag := n.ResourceData.ID, n.ResourceData.ETag
	// At least W/"" : W/" alone has its opening quote for its closing one.
	if id == "" || len(id) > MaxEventID || len(tag) < len(`W/""`) || !strings.HasPrefix(tag, `W/"`) || !strings.HasSuffix(tag, `"`) || len(tag) > maxETag {
		return "", ""
	}
	ck := tag[3 : len(tag)-1]
	if ck == "" || strings.ContainsAny(ck, "\"\\") || hasControl(id) || hasControl(ck) {
		return "", ""
	}
	return id, ck
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
