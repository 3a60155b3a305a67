package main

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const settingsFields = `tenantId clientId clientSecretHint status grantedPermissions registeredAt verifiedAt lastError`

// upload posts a file with the GraphQL multipart request spec, as the host's
// file button and `curl -F` do. It returns the raw body too.
func (a *app) upload(t *testing.T, tok string, content []byte, headers ...string) (gqlResponse, string) {
	t.Helper()
	return a.uploadTo(t, `uploadCalendarAuthFile(file: $file) { `+settingsFields+` }`, tok, content, headers...)
}

// uploadTo posts a file to the mutation field selection given.
func (a *app) uploadTo(t *testing.T, field, tok string, content []byte, headers ...string) (gqlResponse, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("operations", `{"query":"mutation($file: Upload!) { `+field+` }","variables":{"file":null}}`)
	_ = mw.WriteField("map", `{"0":["variables.file"]}`)
	fw, _ := mw.CreateFormFile("0", "authOfficeCalendar.json")
	_, _ = fw.Write(content)
	_ = mw.Close()
	return a.post(t, &buf, mw.FormDataContentType(), tok, headers...)
}

func demoFile(secret string) []byte {
	b, _ := json.Marshal(map[string]string{"tenant_id": demoTenantID, "client_id": demoClientID, "client_secret": secret})
	return b
}

type settingsJSON struct {
	TenantID, ClientID, ClientSecretHint, Status string
	GrantedPermissions                           []string
	LastError                                    *string
}

func TestCalendarAuthEndToEnd(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	admin := token(t, "acme", "admin-1", "system_admin")

	for _, role := range []string{"user_admin", "service", "member"} {
		r, body := a.upload(t, token(t, "acme", "u", role), demoFile(demoSecret))
		if r.code() != "FORBIDDEN" || strings.Contains(body, demoSecret) {
			t.Fatalf("%s: %s", role, body)
		}
	}
	if r, _ := a.upload(t, "", demoFile(demoSecret)); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("anonymous: %+v", r.Errors)
	}

	// A Windows editor's file: BOM and CRLF.
	winFile := append([]byte("\uFEFF"), bytes.ReplaceAll(demoFile(demoSecret), []byte(","), []byte(",\r\n"))...)
	r, body := a.upload(t, admin, winFile)
	if r.code() != "" {
		t.Fatalf("upload: %s", body)
	}
	var s settingsJSON
	_ = json.Unmarshal(r.Data["uploadCalendarAuthFile"], &s)
	if s.Status != "VERIFIED" || s.TenantID != demoTenantID || s.ClientSecretHint != "••••ator" || len(s.GrantedPermissions) == 0 {
		t.Fatalf("settings %+v", s)
	}
	if strings.Contains(body, demoSecret) {
		t.Fatal("the response contains the secret")
	}

	q := a.gql(t, admin, `{ calendarAuthSettings { `+settingsFields+` } }`, nil)
	if !strings.Contains(string(q.Data["calendarAuthSettings"]), `"VERIFIED"`) {
		t.Fatalf("query: %s", q.Data["calendarAuthSettings"])
	}
	if other := a.gql(t, token(t, "other-co", "admin-2", "system_admin"), `{ calendarAuthSettings { tenantId } }`, nil); string(other.Data["calendarAuthSettings"]) != "null" {
		t.Fatalf("another company sees it: %s", other.Data["calendarAuthSettings"])
	}

	t.Run("bad file", func(t *testing.T) {
		r, _ := a.upload(t, admin, []byte(`{"tenantId": "x", "client_id": "y", "client_secret": "z"}`), "Accept-Language", "en")
		if r.code() != "AUTH_FILE_INVALID" || r.Errors[0].Extensions["field"] != "tenant_id" || !strings.Contains(r.Errors[0].Message, `did you mean "tenant_id"`) {
			t.Fatalf("%+v", r.Errors)
		}
		r, _ = a.upload(t, admin, []byte(`{"tenantId": "x"}`))
		if !strings.Contains(r.Errors[0].Message, "誤りではありませんか") {
			t.Fatalf("Japanese message: %q", r.Errors[0].Message)
		}
	})
	t.Run("wrong secret through the form", func(t *testing.T) {
		r := a.gql(t, admin, `mutation($in: CalendarAuthInput!) { setCalendarAuth(input: $in) { status } }`,
			map[string]any{"in": map[string]any{"tenantId": demoTenantID, "clientId": demoClientID, "clientSecret": "Wr8Q~wrong-secret-value-0000000000000"}})
		e := r.Errors[0].Extensions
		if r.code() != "CREDENTIALS_REJECTED" || e["status"] != "INVALID_SECRET" || e["field"] != "input.clientSecret" || e["hint"] == nil {
			t.Fatalf("%+v", r.Errors)
		}
		// The earlier registration is untouched.
		q := a.gql(t, admin, `{ calendarAuthSettings { status clientSecretHint } }`, nil)
		if !strings.Contains(string(q.Data["calendarAuthSettings"]), `"••••ator"`) {
			t.Fatalf("refused input changed the stored settings: %s", q.Data["calendarAuthSettings"])
		}
	})

	v := a.gql(t, admin, `mutation { verifyCalendarAuth { status verifiedAt } }`, nil)
	if v.code() != "" || !strings.Contains(string(v.Data["verifyCalendarAuth"]), "VERIFIED") {
		t.Fatalf("verify: %+v %s", v.Errors, v.Data["verifyCalendarAuth"])
	}
	d := a.gql(t, admin, `mutation { deleteCalendarAuth }`, nil)
	if string(d.Data["deleteCalendarAuth"]) != "true" {
		t.Fatalf("delete: %+v", d)
	}
	if q := a.gql(t, admin, `{ calendarAuthSettings { tenantId } }`, nil); string(q.Data["calendarAuthSettings"]) != "null" {
		t.Fatalf("after delete: %s", q.Data["calendarAuthSettings"])
	}
	if v := a.gql(t, admin, `mutation { verifyCalendarAuth { status } }`, nil); v.code() != "NOT_FOUND" {
		t.Fatalf("verify after delete: %+v", v.Errors)
	}
	if strings.Contains(a.logs.String(), demoSecret) || strings.Contains(a.out.String(), demoSecret) {
		t.Fatal("the secret reached the logs")
	}
}

func TestRotateKeyCommand(t *testing.T) {
	t.Parallel()
	dsn := schemaURL(t)
	oldKey := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	newKey := "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	a := startApp(t, map[string]string{"DATABASE_URL": dsn, "CALSYNC_ENCRYPTION_KEY": oldKey})
	if r, body := a.upload(t, token(t, "acme", "admin", "system_admin"), demoFile(demoSecret)); r.code() != "" {
		t.Fatal(body)
	}
	a.stop(t)

	env := map[string]string{"CALSYNC_GRAPH": "emulator", "DATABASE_URL": dsn, "CALSYNC_ENCRYPTION_KEY": newKey}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"rotate-key"}, func(k string) string { return env[k] }, &out, io.Discard); err == nil {
		t.Fatal("rotate-key without the old key should refuse")
	}
	env["CALSYNC_ENCRYPTION_OLD_KEYS"] = oldKey
	if err := run(t.Context(), []string{"rotate-key"}, func(k string) string { return env[k] }, &out, io.Discard); err != nil || !strings.Contains(out.String(), "re-sealed 1 secrets") {
		t.Fatalf("%q %v", out.String(), err)
	}
	// Only the new key is needed from now on.
	b := startApp(t, map[string]string{"DATABASE_URL": dsn, "CALSYNC_ENCRYPTION_KEY": newKey})
	v := b.gql(t, token(t, "acme", "admin", "system_admin"), `mutation { verifyCalendarAuth { status } }`, nil)
	if v.code() != "" || !strings.Contains(string(v.Data["verifyCalendarAuth"]), "VERIFIED") {
		t.Fatalf("after rotation: %+v", v.Errors)
	}
}

const checkFields = `checkCalendarAuthFile(file: $file) { tenantId clientId clientSecretHint clientSecretExpiresAt secretExpiryHint status grantedPermissions problems { code message field hint } }`

type checkJSON struct {
	TenantID, ClientID, ClientSecretHint, SecretExpiryHint *string
	ClientSecretExpiresAt                                  *time.Time
	Status                                                 *string
	GrantedPermissions                                     []string
	Problems                                               []struct{ Code, Message, Field, Hint string }
}

// TestCheckCalendarAuthFile: the manual's check before [登録] proves a file
// as the upload does, answers what is wrong as problems, never stores
// anything and never echoes the secret.
func TestCheckCalendarAuthFile(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	admin := token(t, "acme", "admin-1", "system_admin")
	check := func(content []byte) checkJSON {
		t.Helper()
		r, body := a.uploadTo(t, checkFields, admin, content, "Accept-Language", "en")
		if r.code() != "" || strings.Contains(body, demoSecret) || strings.Contains(body, "Wrong~secret") {
			t.Fatalf("check: %s", body)
		}
		var c checkJSON
		if err := json.Unmarshal(r.Data["checkCalendarAuthFile"], &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	stored := func() string {
		t.Helper()
		r := a.gql(t, admin, `{ calendarAuthSettings { clientSecretHint status } }`, nil)
		return string(r.Data["calendarAuthSettings"])
	}

	// A good file, with the portal's expiry date.
	var f map[string]string
	_ = json.Unmarshal(demoFile(demoSecret), &f)
	f["client_secret_expires_at"] = "2027/11/25"
	good, _ := json.Marshal(f)
	c := check(good)
	if c.Status == nil || *c.Status != "VERIFIED" || len(c.Problems) != 0 || *c.TenantID != demoTenantID || *c.ClientID != demoClientID ||
		*c.ClientSecretHint != demoSecret[len(demoSecret)-4:] || !slices.Contains(c.GrantedPermissions, "Calendars.ReadWrite") ||
		c.ClientSecretExpiresAt == nil || !c.ClientSecretExpiresAt.Equal(time.Date(2027, 11, 24, 15, 0, 0, 0, time.UTC)) || c.SecretExpiryHint != nil {
		t.Fatalf("good file: %+v", c)
	}
	if s := stored(); s != "null" {
		t.Fatalf("a check stored the credentials: %s", s)
	}

	// A wrong secret: Microsoft's refusal as a problem, the status shown.
	c = check(demoFile("Wrong~secret-value-0000000000000000"))
	if c.Status == nil || *c.Status != "INVALID_SECRET" || len(c.Problems) != 1 || c.Problems[0].Code != "CREDENTIALS_REJECTED" ||
		c.Problems[0].Field != "client_secret" || c.Problems[0].Message == "" ||
		c.SecretExpiryHint == nil || !strings.Contains(*c.SecretExpiryHint, "client_secret_expires_at") {
		t.Fatalf("wrong secret: %+v", c)
	}

	// A file that cannot be read: the parser's problem, nothing else.
	c = check([]byte(`{"tenant_id": "x"`))
	if c.Status != nil || c.TenantID != nil || len(c.Problems) != 1 || c.Problems[0].Code != "AUTH_FILE_INVALID" || len(c.GrantedPermissions) != 0 {
		t.Fatalf("unreadable file: %+v", c)
	}
	f["client_secret_expires_at"] = "someday"
	bad, _ := json.Marshal(f)
	if c = check(bad); len(c.Problems) != 1 || c.Problems[0].Field != "client_secret_expires_at" {
		t.Fatalf("bad expiry: %+v", c)
	}

	// Registered credentials stay as they were whatever is checked.
	if r, body := a.upload(t, admin, demoFile(demoSecret)); r.code() != "" {
		t.Fatalf("upload: %s", body)
	}
	before := stored()
	check(demoFile("Wrong~secret-value-0000000000000000"))
	if after := stored(); after != before {
		t.Fatalf("a failed check changed the stored credentials: %s → %s", before, after)
	}
}

// TestSecretExpiryIsShown: the expiry given in the file or the form is
// stored and shown with the days left; registering again without one
// clears it; a form value out of range is refused naming its field.
func TestSecretExpiryIsShown(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	admin := token(t, "acme", "admin-1", "system_admin")
	const q = `{ calendarAuthSettings { clientSecretExpiresAt daysUntilSecretExpiry } }`
	settings := func() (exp *time.Time, days *int) {
		t.Helper()
		var s struct {
			CalendarAuthSettings struct {
				ClientSecretExpiresAt *time.Time
				DaysUntilSecretExpiry *int
			}
		}
		r := a.gql(t, admin, q, nil)
		b, _ := json.Marshal(r.Data)
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		return s.CalendarAuthSettings.ClientSecretExpiresAt, s.CalendarAuthSettings.DaysUntilSecretExpiry
	}
	in := time.Now().Add(10*24*time.Hour + time.Hour).UTC().Truncate(time.Second)
	var f map[string]string
	_ = json.Unmarshal(demoFile(demoSecret), &f)
	f["client_secret_expires_at"] = in.Format(time.RFC3339)
	file, _ := json.Marshal(f)
	if r, body := a.upload(t, admin, file); r.code() != "" {
		t.Fatalf("upload: %s", body)
	}
	if exp, days := settings(); exp == nil || !exp.Equal(in) || days == nil || *days != 10 {
		t.Fatalf("after an upload with an expiry: %v, %v days", exp, days)
	}
	series := `calsync_credentials_secret_expiry_timestamp_seconds{company="acme"} `
	if m := a.metrics(t); !strings.Contains(m, series+strconv.FormatInt(in.Unix(), 10)) &&
		!strings.Contains(m, series+strconv.FormatFloat(float64(in.Unix()), 'e', -1, 64)) {
		t.Fatalf("metric of the expiry missing or wrong:\n%s", grepLines(m, "secret_expiry"))
	}
	if r, body := a.upload(t, admin, demoFile(demoSecret)); r.code() != "" {
		t.Fatalf("upload: %s", body)
	}
	if exp, days := settings(); exp != nil || days != nil {
		t.Fatalf("after an upload without one: %v, %v", exp, days)
	}
	if m := a.metrics(t); strings.Contains(m, `calsync_credentials_secret_expiry_timestamp_seconds{`) {
		t.Fatalf("a cleared expiry is still exported:\n%s", grepLines(m, "secret_expiry"))
	}
	// Without an expiry the answer says how to add one, in the caller's language.
	hint := func(lang string) string {
		t.Helper()
		r := a.gql(t, admin, `{ calendarAuthSettings { secretExpiryHint } }`, nil, "Accept-Language", lang)
		var s struct {
			CalendarAuthSettings struct{ SecretExpiryHint *string }
		}
		b, _ := json.Marshal(r.Data)
		_ = json.Unmarshal(b, &s)
		if s.CalendarAuthSettings.SecretExpiryHint == nil {
			return ""
		}
		return *s.CalendarAuthSettings.SecretExpiryHint
	}
	if en, ja := hint("en"), hint("ja"); !strings.Contains(en, "client_secret_expires_at") || !strings.Contains(ja, "有効期限") {
		t.Fatalf("hints without an expiry: %q / %q", en, ja)
	}
	set := `mutation($in: CalendarAuthInput!) { setCalendarAuth(input: $in) { clientSecretExpiresAt daysUntilSecretExpiry } }`
	form := map[string]any{"tenantId": demoTenantID, "clientId": demoClientID, "clientSecret": demoSecret, "clientSecretExpiresAt": "2027-11-25T00:00:00+09:00"}
	if r := a.gql(t, admin, set, map[string]any{"in": form}); r.code() != "" {
		t.Fatalf("form: %+v", r.Errors)
	}
	if exp, _ := settings(); exp == nil || !exp.Equal(time.Date(2027, 11, 24, 15, 0, 0, 0, time.UTC)) {
		t.Fatalf("after the form: %v", exp)
	}
	if h := hint("en"); h != "" {
		t.Fatalf("a hint though the expiry is known: %q", h)
	}
	form["clientSecretExpiresAt"] = "2999-01-01T00:00:00Z"
	if r := a.gql(t, admin, set, map[string]any{"in": form}); r.code() != "AUTH_FILE_INVALID" || r.Errors[0].Extensions["field"] != "input.clientSecretExpiresAt" {
		t.Fatalf("a year 2999 expiry: %+v", r.Errors)
	}
}

// metrics reads calsync's /metrics.
func (a *app) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(a.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
