// Package authfile parses and validates authOfficeCalendar.json, the file a
// company's Entra ID admin writes ({"tenant_id", "client_id",
// "client_secret"}). It is outside input from people copying values out of
// the Azure portal, so every problem gets a precise, bilingual
// AUTH_FILE_INVALID error naming the field, and common slips (a BOM, CRLF,
// camelCase keys, the secret's ID instead of its value) are recognised.
package authfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tehaishokunin/calsync/apperr"
)

// MaxSize is the largest file accepted.
const MaxSize = 16 << 10

// Field names, as in the file.
const (
	FieldTenantID     = "tenant_id"
	FieldClientID     = "client_id"
	FieldClientSecret = "client_secret"
	// FieldSecretExpiresAt is optional: when the client secret expires, as
	// the portal shows it next to the secret (2027/11/25), a date
	// (2027-11-25) or an RFC 3339 time.
	FieldSecretExpiresAt = "client_secret_expires_at"
)

var fields = []string{FieldTenantID, FieldClientID, FieldClientSecret}

// known are the keys a file may hold: the three required ones and the
// optional expiry.
var known = []string{FieldTenantID, FieldClientID, FieldClientSecret, FieldSecretExpiresAt}

// File is a validated authOfficeCalendar.json.
type File struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	// SecretExpiresAt is when the secret expires, when the file says.
	SecretExpiresAt *time.Time
}

// String never shows the secret.
func (f File) String() string {
	return fmt.Sprintf("authfile{tenant_id=%s client_id=%s client_secret=****}", f.TenantID, f.ClientID)
}

// GoString never shows the secret either (%#v).
func (f File) GoString() string { return f.String() }

func invalid(field, ja, en string) *apperr.Error {
	e := apperr.New(apperr.AuthFileInvalid, ja, en)
	if field != "" {
		e = e.WithField(field)
	}
	return e
}

// Parse reads and validates the file's bytes.
func Parse(data []byte) (File, error) {
	if len(data) > MaxSize {
		return File{}, invalid("", fmt.Sprintf("ファイルが大きすぎます（上限 %d KiB）。authOfficeCalendar.json を選択しているか確認してください。", MaxSize>>10),
			fmt.Sprintf("The file is too large (limit %d KiB). Check that you selected authOfficeCalendar.json.", MaxSize>>10))
	}
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return File{}, invalid("", "ファイルが UTF-16 で保存されています。UTF-8 で保存し直してください。",
			"The file is saved as UTF-16. Save it as UTF-8 and upload it again.")
	}
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	if !utf8.Valid(data) {
		return File{}, invalid("", "ファイルが UTF-8 ではありません。UTF-8 で保存し直してください。",
			"The file is not UTF-8. Save it as UTF-8 and upload it again.")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return File{}, invalid("", "ファイルが空です。", "The file is empty.")
	}
	values, err := decodeObject(data)
	if err != nil {
		return File{}, err
	}
	f := File{
		TenantID:     values[FieldTenantID],
		ClientID:     values[FieldClientID],
		ClientSecret: values[FieldClientSecret],
	}
	for _, name := range fields {
		if _, ok := values[name]; !ok {
			return File{}, invalid(name, fmt.Sprintf("%s がありません。", name), fmt.Sprintf("%s is missing.", name))
		}
	}
	if v, ok := values[FieldSecretExpiresAt]; ok {
		t, err := ParseExpiry(v)
		if err != nil {
			return File{}, err
		}
		f.SecretExpiresAt = &t
	}
	return Validate(f)
}

// expiryZone reads a date without a time: the portal shows the expiry in
// the admin's zone, for 手配職人's admins Japan's; the day's start is taken,
// so warnings come early rather than late.
var expiryZone = time.FixedZone("JST", 9*3600)

// ParseExpiry reads a client secret's expiry: 2027-11-25, 2027/11/25 (as
// the portal shows it) or an RFC 3339 time, between 2000 and 2200.
func ParseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	var t time.Time
	var err error = errBadExpiry
	if len(s) <= 64 {
		for _, layout := range []string{"2006-01-02", "2006/01/02", "2006/1/2"} {
			if t, err = time.ParseInLocation(layout, s, expiryZone); err == nil {
				break
			}
		}
		if err != nil {
			t, err = time.Parse(time.RFC3339, s)
		}
	}
	if err != nil || t.Year() < 2000 || t.Year() > 2200 {
		return time.Time{}, invalid(FieldSecretExpiresAt,
			"client_secret_expires_at は有効期限の日付（例: 2027/11/25 または 2027-11-25）か RFC 3339 の日時で指定してください。",
			"client_secret_expires_at must be the expiry date (e.g. 2027/11/25 or 2027-11-25) or an RFC 3339 time.").
			WithHint("Entra 管理センターの「証明書とシークレット」で、シークレットの「有効期限」の列に表示される日付です。",
				"It is the date in the Expires column under Certificates & secrets in the Entra admin center.")
	}
	return t.UTC(), nil
}

var errBadExpiry = errors.New("bad expiry")

// decodeObject reads exactly one JSON object of string values, refusing
// duplicate and unknown keys and trailing data.
func decodeObject(data []byte) (map[string]string, error) {
	notObject := invalid("", "JSON オブジェクト（{ \"tenant_id\": ..., \"client_id\": ..., \"client_secret\": ... }）ではありません。",
		`The file is not a JSON object ({"tenant_id": ..., "client_id": ..., "client_secret": ...}).`)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, notObject
	}
	values := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(err)
		}
		if !isKnown(key) {
			return nil, unknownKey(key)
		}
		if _, dup := values[key]; dup {
			return nil, invalid(key, fmt.Sprintf("%s が2回書かれています。1つにしてください。", key), fmt.Sprintf("%s appears twice; keep only one.", key))
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalid(key, fmt.Sprintf("%s は文字列（\"...\"）で書いてください。", key), fmt.Sprintf("%s must be a string (\"...\").", key))
		}
		values[key] = s
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid("", "JSON オブジェクトの後に余分なデータがあります。", "There is extra data after the JSON object.")
	}
	return values, nil
}

func syntaxError(err error) *apperr.Error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return invalid("", fmt.Sprintf("JSON の書式が正しくありません（%d バイト目付近）。", se.Offset),
			fmt.Sprintf("The file is not valid JSON (near byte %d).", se.Offset))
	}
	return invalid("", "JSON の書式が正しくありません（途中で終わっています）。", "The file is not valid JSON (it ends too early).")
}

func isKnown(key string) bool {
	for _, f := range known {
		if key == f {
			return true
		}
	}
	return false
}

// normalise folds case and drops separators, so clientId, ClientID,
// client-id and "tenant id" all meet their field.
func normalise(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func unknownKey(key string) *apperr.Error {
	best, bestDist := "", 1<<30
	for _, f := range known {
		d := levenshtein(normalise(key), normalise(f))
		if d < bestDist {
			best, bestDist = f, d
		}
	}
	shown := key
	if len(shown) > 64 {
		shown = shown[:64] + "…"
	}
	if bestDist <= 2 {
		return invalid(best, fmt.Sprintf("不明なキー \"%s\" があります。\"%s\" の誤りではありませんか？", shown, best),
			fmt.Sprintf("Unknown key %q: did you mean %q?", shown, best)).
			WithHint(fmt.Sprintf("キー名は %s, %s, %s（と任意の %s）だけです。", FieldTenantID, FieldClientID, FieldClientSecret, FieldSecretExpiresAt),
				fmt.Sprintf("The only keys are %s, %s and %s (and, optionally, %s).", FieldTenantID, FieldClientID, FieldClientSecret, FieldSecretExpiresAt)).
			WithExtra("didYouMean", best)
	}
	return invalid("", fmt.Sprintf("不明なキー \"%s\" があります。使えるのは %s, %s, %s（と任意の %s）だけです。", shown, FieldTenantID, FieldClientID, FieldClientSecret, FieldSecretExpiresAt),
		fmt.Sprintf("Unknown key %q; the only keys are %s, %s and %s (and, optionally, %s).", shown, FieldTenantID, FieldClientID, FieldClientSecret, FieldSecretExpiresAt))
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

var (
	guidPattern   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	domainPattern = regexp.MustCompile(`^(?i)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
)

// IsGUID reports whether s is a GUID (8-4-4-4-12 hex digits).
func IsGUID(s string) bool { return guidPattern.MatchString(s) }

// Validate trims and checks the three values (also used for the form
// input of setCalendarAuth).
func Validate(f File) (File, error) {
	f.TenantID = strings.TrimSpace(f.TenantID)
	f.ClientID = strings.TrimSpace(f.ClientID)
	f.ClientSecret = strings.TrimSpace(f.ClientSecret)
	for _, x := range []struct{ name, value string }{{FieldTenantID, f.TenantID}, {FieldClientID, f.ClientID}, {FieldClientSecret, f.ClientSecret}} {
		if x.value == "" {
			return File{}, invalid(x.name, fmt.Sprintf("%s が空です。", x.name), fmt.Sprintf("%s is empty.", x.name))
		}
	}
	switch {
	case IsGUID(f.TenantID):
		f.TenantID = strings.ToLower(f.TenantID)
	case len(f.TenantID) <= 253 && domainPattern.MatchString(f.TenantID):
		f.TenantID = strings.ToLower(f.TenantID)
	default:
		return File{}, invalid(FieldTenantID, "tenant_id は「ディレクトリ (テナント) ID」（GUID 形式）か、テナントのドメイン（例: contoso.onmicrosoft.com）で指定してください。",
			"tenant_id must be the Directory (tenant) ID (a GUID) or a tenant domain such as contoso.onmicrosoft.com.").
			WithHint("Entra ID 管理センターのアプリの「概要」に表示される「ディレクトリ (テナント) ID」をコピーしてください。",
				"Copy the \"Directory (tenant) ID\" from the app's Overview page in the Entra admin center.")
	}
	if !IsGUID(f.ClientID) {
		return File{}, invalid(FieldClientID, "client_id は「アプリケーション (クライアント) ID」（GUID 形式）で指定してください。",
			"client_id must be the Application (client) ID, a GUID.").
			WithHint("アプリの「概要」に表示される「アプリケーション (クライアント) ID」をコピーしてください。",
				"Copy the \"Application (client) ID\" from the app's Overview page.")
	}
	f.ClientID = strings.ToLower(f.ClientID)
	if f.TenantID == f.ClientID {
		return File{}, invalid(FieldClientID, "tenant_id と client_id が同じ値です。client_id には「アプリケーション (クライアント) ID」を指定してください。",
			"tenant_id and client_id are the same; client_id must be the Application (client) ID.")
	}
	if IsGUID(f.ClientSecret) {
		return File{}, invalid(FieldClientSecret, "client_secret に「シークレット ID」が指定されています。シークレットの「値」を指定してください。",
			"client_secret holds the secret's ID, not its value.").
			WithHint("「証明書とシークレット」で新しいクライアントシークレットを作成し、作成直後に一度だけ表示される「値」をコピーしてください。",
				"Create a new client secret under Certificates & secrets and copy its Value, which is shown only once, right after creation.")
	}
	if t := f.SecretExpiresAt; t != nil && (t.Year() < 2000 || t.Year() > 2200) {
		return File{}, invalid(FieldSecretExpiresAt, "client_secret_expires_at は 2000 年から 2200 年までの日時にしてください。",
			"client_secret_expires_at must be between the years 2000 and 2200.")
	}
	if len(f.ClientSecret) > 1024 {
		return File{}, invalid(FieldClientSecret, "client_secret が長すぎます。", "client_secret is too long.")
	}
	for _, r := range f.ClientSecret {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return File{}, invalid(FieldClientSecret, "client_secret に空白や制御文字が含まれています。値だけをコピーしてください。",
				"client_secret contains spaces or control characters; copy only the value.")
		}
	}
	return f, nil
}
