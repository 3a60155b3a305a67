package authfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tehaishokunin/calsync/apperr"
)

const (
	tid    = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	cid    = "0f3c5b6e-9d2a-4f4e-8a0b-1c2d3e4f5a6b"
	secret = "Abc8Q~x.y_z-0123456789abcdefghijKLMNOP"
)

func valid() string {
	return `{"tenant_id": "` + tid + `", "client_id": "` + cid + `", "client_secret": "` + secret + `"}`
}

func TestValidFiles(t *testing.T) {
	cases := map[string]string{
		"plain":           valid(),
		"bom":             "\uFEFF" + valid(),
		"crlf":            "{\r\n  \"tenant_id\": \"" + tid + "\",\r\n  \"client_id\": \"" + cid + "\",\r\n  \"client_secret\": \"" + secret + "\"\r\n}\r\n",
		"padded values":   `{"tenant_id": "  ` + strings.ToUpper(tid) + ` ", "client_id": "` + cid + `\t", "client_secret": " ` + secret + ` "}`,
		"domain tenant":   `{"tenant_id": "Contoso.onmicrosoft.com", "client_id": "` + cid + `", "client_secret": "` + secret + `"}`,
		"verified domain": `{"tenant_id": "example.co.jp", "client_id": "` + cid + `", "client_secret": "` + secret + `"}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := Parse([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if f.ClientID != cid || f.ClientSecret != secret || (f.TenantID != tid && !strings.Contains(f.TenantID, ".")) {
				t.Fatalf("%+v", f)
			}
			if f.TenantID != strings.ToLower(f.TenantID) {
				t.Fatalf("tenant not lower-cased: %s", f.TenantID)
			}
		})
	}
}

func TestInvalidFiles(t *testing.T) {
	cases := []struct {
		name, in, field, enContains string
	}{
		{"too large", `{"tenant_id":"` + strings.Repeat("a", MaxSize) + `"}`, "", "too large"},
		{"not utf-8", "{\"tenant_id\": \"\xff\xfe\"}", "", "not UTF-8"},
		{"utf-16", "\xff\xfe{\x00", "", "UTF-16"},
		{"empty", "   \r\n", "", "empty"},
		{"array", `[` + valid() + `]`, "", "not a JSON object"},
		{"string", `"hello"`, "", "not a JSON object"},
		{"broken", `{"tenant_id": "` + tid + `",`, "", "not valid JSON"},
		{"trailing data", valid() + ` {}`, "", "extra data"},
		{"trailing comma garbage", valid() + `,`, "", "extra data"},
		{"duplicate key", `{"tenant_id": "` + tid + `", "tenant_id": "` + tid + `", "client_id": "` + cid + `", "client_secret": "` + secret + `"}`, "tenant_id", "twice"},
		{"missing secret", `{"tenant_id": "` + tid + `", "client_id": "` + cid + `"}`, "client_secret", "missing"},
		{"empty client", `{"tenant_id": "` + tid + `", "client_id": "  ", "client_secret": "` + secret + `"}`, "client_id", "empty"},
		{"number", `{"tenant_id": 12, "client_id": "` + cid + `", "client_secret": "` + secret + `"}`, "tenant_id", "must be a string"},
		{"camelCase", `{"tenantId": "` + tid + `", "client_id": "` + cid + `", "client_secret": "` + secret + `"}`, "tenant_id", `did you mean "tenant_id"`},
		{"no underscore", `{"tenant_id": "` + tid + `", "clientid": "` + cid + `", "client_secret": "` + secret + `"}`, "client_id", `did you mean "client_id"`},
		{"typo", `{"tenant_id": "` + tid + `", "client_id": "` + cid + `", "client_secrt": "` + secret + `"}`, "client_secret", `did you mean "client_secret"`},
		{"unrelated key", `{"tenant_id": "` + tid + `", "client_id": "` + cid + `", "client_secret": "` + secret + `", "redirect_uri": "x"}`, "", "Unknown key"},
		{"bad tenant", `{"tenant_id": "not a tenant", "client_id": "` + cid + `", "client_secret": "` + secret + `"}`, "tenant_id", "Directory (tenant) ID"},
		{"bad client", `{"tenant_id": "` + tid + `", "client_id": "my-app", "client_secret": "` + secret + `"}`, "client_id", "Application (client) ID"},
		{"same ids", `{"tenant_id": "` + tid + `", "client_id": "` + strings.ToUpper(tid) + `", "client_secret": "` + secret + `"}`, "client_id", "same"},
		{"secret id", `{"tenant_id": "` + tid + `", "client_id": "` + cid + `", "client_secret": "8e2b5c1a-1111-4222-8333-944455556666"}`, "client_secret", "secret's ID"},
		{"secret with space", `{"tenant_id": "` + tid + `", "client_id": "` + cid + `", "client_secret": "abc def"}`, "client_secret", "spaces"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			var ae *apperr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v", err)
			}
			if ae.Code != apperr.AuthFileInvalid || ae.Field != c.field || !strings.Contains(ae.Message.EN, c.enContains) || ae.Message.JA == "" {
				t.Fatalf("got code=%s field=%q en=%q, want field %q containing %q", ae.Code, ae.Field, ae.Message.EN, c.field, c.enContains)
			}
			if strings.Contains(ae.Message.EN+ae.Message.JA, secret) {
				t.Fatal("error message contains the secret")
			}
		})
	}
}

func TestSecretIDHint(t *testing.T) {
	_, err := Validate(File{TenantID: tid, ClientID: cid, ClientSecret: "8e2b5c1a-1111-4222-8333-944455556666"})
	ae := apperr.As(err)
	if ae.Hint == nil || !strings.Contains(ae.Hint.JA, "値") || !strings.Contains(ae.Hint.EN, "Value") {
		t.Fatalf("hint %+v", ae.Hint)
	}
}

func TestStringHidesSecret(t *testing.T) {
	f, err := Parse([]byte(valid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{f.String(), f.GoString()} {
		if strings.Contains(s, secret) {
			t.Fatalf("%q shows the secret", s)
		}
	}
}

// FuzzParse: no input panics, and whatever is accepted satisfies the rules.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/seed/*.json")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(valid()))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			ae := apperr.As(err)
			if ae.Code != apperr.AuthFileInvalid || ae.Message.JA == "" || ae.Message.EN == "" {
				t.Fatalf("unexpected error shape: %#v", ae)
			}
			return
		}
		if !IsGUID(file.ClientID) || file.TenantID == "" || file.TenantID == file.ClientID || IsGUID(file.ClientSecret) {
			t.Fatalf("accepted an invalid file: %v", file)
		}
		if strings.TrimSpace(file.ClientSecret) != file.ClientSecret || !utf8.ValidString(file.ClientSecret) {
			t.Fatalf("secret not normalised")
		}
	})
}

func TestSecretExpiry(t *testing.T) {
	with := func(v string) string {
		return `{"tenant_id": "` + tid + `", "client_id": "` + cid + `", "client_secret": "` + secret + `", "client_secret_expires_at": "` + v + `"}`
	}
	jst := time.FixedZone("JST", 9*3600)
	for in, want := range map[string]time.Time{
		"2027/11/25":                time.Date(2027, 11, 25, 0, 0, 0, 0, jst),
		"2027-11-25":                time.Date(2027, 11, 25, 0, 0, 0, 0, jst),
		" 2027/1/5 ":                time.Date(2027, 1, 5, 0, 0, 0, 0, jst),
		"2027-11-25T10:30:00+09:00": time.Date(2027, 11, 25, 1, 30, 0, 0, time.UTC),
		"2027-11-25T01:30:00Z":      time.Date(2027, 11, 25, 1, 30, 0, 0, time.UTC),
	} {
		f, err := Parse([]byte(with(in)))
		if err != nil || f.SecretExpiresAt == nil || !f.SecretExpiresAt.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", in, f.SecretExpiresAt, err, want)
		}
	}
	for _, in := range []string{"", "next year", "2027-13-01", "25/11/2027", "1999-12-31", "2300-01-01", strings.Repeat("2", 100)} {
		_, err := Parse([]byte(with(in)))
		if ae := apperr.As(err); err == nil || ae.Code != apperr.AuthFileInvalid || ae.Field != FieldSecretExpiresAt {
			t.Errorf("%q: %v", in, err)
		}
	}
	if f, err := Parse([]byte(valid())); err != nil || f.SecretExpiresAt != nil {
		t.Errorf("without the key: %v %v", f.SecretExpiresAt, err)
	}
	// A near miss of the optional key is pointed at it.
	_, err := Parse([]byte(`{"tenant_id": "` + tid + `", "client_id": "` + cid + `", "client_secret": "` + secret + `", "client_secret_expire_at": "2027-11-25"}`))
	if ae := apperr.As(err); ae.Field != FieldSecretExpiresAt {
		t.Errorf("near miss: %v (field %q)", err, ae.Field)
	}
}
