package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const key32 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes

func TestDefaultsWithEmulator(t *testing.T) {
	c, err := Load(env(map[string]string{"CALSYNC_GRAPH": "emulator"}))
	if err != nil {
		t.Fatal(err)
	}
	// The emulator's Playground hands out system_admin tokens: loopback only.
	if c.Addr != "127.0.0.1:8080" || c.DatabaseURL != DefaultDatabaseURL || c.PublicURL.String() != DefaultPublicURL {
		t.Fatalf("defaults: %+v", c)
	}
	if c, err := Load(env(map[string]string{"CALSYNC_GRAPH": "emulator", "CALSYNC_ADDR": ":9090"})); err != nil || c.Addr != ":9090" {
		t.Fatalf("explicit address with the emulator: %v %q", err, c.Addr)
	}
	if c, err := Load(env(map[string]string{"CALSYNC_ENCRYPTION_KEY": key32, "CALSYNC_PUBLIC_URL": "https://calsync.example.jp"})); err != nil || c.Addr != ":8080" {
		t.Fatalf("production default address: %v %q", err, c.Addr)
	}
	if !c.InProcessEmulator() || c.EncryptionKey != nil {
		t.Fatalf("emulator defaults: %+v", c)
	}
	if err := c.RequireAuth(); err == nil || !strings.Contains(err.Error(), "CALSYNC_JWT_SECRET") {
		t.Fatalf("RequireAuth = %v", err)
	}
}

func TestProductionNeedsKeyAndHTTPS(t *testing.T) {
	_, err := Load(env(map[string]string{}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"CALSYNC_ENCRYPTION_KEY", "CALSYNC_PUBLIC_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	c, err := Load(env(map[string]string{"CALSYNC_ENCRYPTION_KEY": key32, "CALSYNC_PUBLIC_URL": "https://calsync.example.jp/"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EncryptionKey) != 32 || c.PublicURL.String() != "https://calsync.example.jp" {
		t.Fatalf("%+v", c)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	cases := map[string]map[string]string{
		"CALSYNC_GRAPH":               {"CALSYNC_GRAPH": "azure"},
		"CALSYNC_ADDR":                {"CALSYNC_ADDR": "8080"},
		"DATABASE_URL":                {"DATABASE_URL": "mysql://x"},
		"CALSYNC_ENCRYPTION_KEY":      {"CALSYNC_ENCRYPTION_KEY": "c2hvcnQ="},
		"CALSYNC_JWT_SECRET":          {"CALSYNC_JWT_SECRET": "short"},
		"CALSYNC_GRAPH_BASE_URL":      {"CALSYNC_GRAPH_BASE_URL": "http://graph.local"},
		"CALSYNC_MAX_BODY_BYTES":      {"CALSYNC_MAX_BODY_BYTES": "lots"},
		"CALSYNC_LOG_LEVEL":           {"CALSYNC_LOG_LEVEL": "loud"},
		"CALSYNC_HOST_WEBHOOK_SECRET": {"CALSYNC_HOST_WEBHOOK_URL": "https://host.example/hook"},
		"CALSYNC_PPROF_ADDR":          {"CALSYNC_PPROF_ADDR": "0.0.0.0:6060"},
		"CALSYNC_GC_MIN_HEAP_BYTES":   {"CALSYNC_GC_MIN_HEAP_BYTES": "-1"},
	}
	for _, addr := range []string{":6060", "10.0.0.1:6060", "6060", "localhost"} {
		if _, err := Load(env(map[string]string{"CALSYNC_GRAPH": "emulator", "CALSYNC_PPROF_ADDR": addr})); err == nil {
			t.Errorf("CALSYNC_PPROF_ADDR=%q accepted: profiles would be reachable off the machine", addr)
		}
	}
	if c, err := Load(env(map[string]string{"CALSYNC_GRAPH": "emulator", "CALSYNC_PPROF_ADDR": "127.0.0.1:6060"})); err != nil || c.PprofAddr != "127.0.0.1:6060" {
		t.Errorf("loopback pprof address: %v %q", err, c.PprofAddr)
	}
	for name, vars := range cases {
		vars["CALSYNC_GRAPH"] = orDefault(vars["CALSYNC_GRAPH"], "emulator")
		_, err := Load(env(vars))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestGCMinHeap: the floor is off unless asked for, and off when the
// operator tunes the collector with Go's own variables.
func TestGCMinHeap(t *testing.T) {
	for vars, want := range map[[4]string]int64{
		{}:                                    0,
		{"CALSYNC_GC_MIN_HEAP_BYTES", "1024"}: 1024,
		{"CALSYNC_GC_MIN_HEAP_BYTES", "33554432", "GOGC", "200"}:          0,
		{"CALSYNC_GC_MIN_HEAP_BYTES", "33554432", "GOMEMLIMIT", "512MiB"}: 0,
	} {
		m := map[string]string{"CALSYNC_GRAPH": "emulator"}
		for i := 0; i < 4 && vars[i] != ""; i += 2 {
			m[vars[i]] = vars[i+1]
		}
		c, err := Load(env(m))
		if err != nil || c.GCMinHeapBytes != want {
			t.Errorf("%v: %v, floor %d, want %d", vars, err, c.GCMinHeapBytes, want)
		}
	}
	if _, err := Load(env(map[string]string{"CALSYNC_GRAPH": "emulator", "CALSYNC_GC_MIN_HEAP_BYTES": "99999999999999"})); err == nil {
		t.Error("a floor beyond 16 GiB accepted")
	}
}

func TestSecretFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(f, []byte(key32+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"CALSYNC_ENCRYPTION_KEY_FILE": f, "CALSYNC_PUBLIC_URL": "https://x.example"}))
	if err != nil || len(c.EncryptionKey) != 32 {
		t.Fatalf("%v %v", c.EncryptionKey, err)
	}
	_, err = Load(env(map[string]string{"CALSYNC_ENCRYPTION_KEY_FILE": f, "CALSYNC_ENCRYPTION_KEY": key32}))
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("both set: %v", err)
	}
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func TestPlaygroundAndIntrospectionDefaults(t *testing.T) {
	emu, err := Load(env(map[string]string{"CALSYNC_GRAPH": "emulator"}))
	if err != nil || !emu.Playground || !emu.Introspection || emu.ComplexityLimit != 10000 || emu.MaxQueryDepth != 12 || emu.MaxAliases != 20 {
		t.Fatalf("emulator defaults: %+v %v", emu, err)
	}
	prod, err := Load(env(map[string]string{"CALSYNC_ENCRYPTION_KEY": key32, "CALSYNC_PUBLIC_URL": "https://x.example"}))
	if err != nil || prod.Playground || prod.Introspection {
		t.Fatalf("production defaults: %+v %v", prod, err)
	}
	if _, err := Load(env(map[string]string{"CALSYNC_GRAPH": "emulator", "CALSYNC_PLAYGROUND": "maybe"})); err == nil || !strings.Contains(err.Error(), "CALSYNC_PLAYGROUND") {
		t.Fatalf("bad boolean: %v", err)
	}
}
