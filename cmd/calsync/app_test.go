package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/db/dbtest"
)

const testSecret = "test-jwt-secret-test-jwt-secret-0123"

// app is a whole calsync started through run(), exactly as `calsync serve`
// starts, on a free port and its own database schema.
type app struct {
	base   string
	logs   *syncBuffer
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan error
	env    map[string]string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// schemaURL returns TEST_DATABASE_URL narrowed to a fresh schema.
func schemaURL(t *testing.T) string {
	t.Helper()
	schema := dbtest.Schema(t)
	u, err := url.Parse(dbtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func startApp(t *testing.T, env map[string]string) *app {
	t.Helper()
	// The free port is found by listening and closing, so another process
	// on this shared machine can take it before serve binds: try another.
	for attempt := 1; ; attempt++ {
		a, err := tryStartApp(t, env)
		if err == nil {
			return a
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("retrying on another port: %v", err)
	}
}

func tryStartApp(t *testing.T, env map[string]string) (*app, error) {
	t.Helper()
	addr := freeAddr(t)
	full := map[string]string{
		"CALSYNC_GRAPH":      "emulator",
		"CALSYNC_ADDR":       addr,
		"CALSYNC_JWT_SECRET": testSecret,
		"DATABASE_URL":       "",
		"CALSYNC_DEV_DIR":    t.TempDir(),
		"CALSYNC_PUBLIC_URL": "http://" + addr,
	}
	for k, v := range env {
		full[k] = v
	}
	if full["DATABASE_URL"] == "" {
		full["DATABASE_URL"] = schemaURL(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &app{base: "http://" + addr, logs: &syncBuffer{}, out: &syncBuffer{}, cancel: cancel, done: make(chan error, 1), env: full}
	go func() {
		a.done <- run(ctx, []string{"serve"}, func(k string) string { return full[k] }, a.out, a.logs)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(a.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Cleanup(func() { a.stop(t) })
				return a, nil
			}
		}
		select {
		case err := <-a.done:
			cancel()
			return nil, fmt.Errorf("serve exited early: %v\nlogs:\n%s", err, a.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Cleanup(func() { a.stop(t) })
			return nil, fmt.Errorf("calsync did not start; logs:\n%s", a.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *app) stop(t *testing.T) {
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.cancel = nil
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("serve did not stop within 20s")
	}
}

// token signs a token for a caller of company with roles.
func token(t *testing.T, company, user string, roles ...string) string {
	t.Helper()
	var out bytes.Buffer
	env := map[string]string{"CALSYNC_GRAPH": "emulator", "CALSYNC_JWT_SECRET": testSecret}
	args := []string{"dev-token", "--company", company, "--user", user, "--roles", strings.Join(roles, ",")}
	if err := run(context.Background(), args, func(k string) string { return env[k] }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

type gqlResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// gql posts a GraphQL request; headers are name, value pairs.
func (a *app) gql(t *testing.T, tok, query string, vars map[string]any, headers ...string) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	out, _ := a.post(t, bytes.NewReader(body), "application/json", tok, headers...)
	return out
}

// post sends a body to /graphql with the caller's token and extra headers
// (name, value pairs) and decodes the answer; it also returns it raw.
func (a *app) post(t *testing.T, body io.Reader, contentType, tok string, headers ...string) (gqlResponse, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.base+"/graphql", body)
	req.Header.Set("Content-Type", contentType)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("status %d, body %s: %v", resp.StatusCode, raw, err)
	}
	return out, string(raw)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// tcpProxy forwards connections to target until stopped; it lets a test cut
// calsync off from Postgres without stopping the shared server.
type tcpProxy struct {
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{addr: freeAddr(t), target: target, conns: map[net.Conn]struct{}{}}
	p.start(t)
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly after stop
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *tcpProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

func proxiedURL(t *testing.T, p *tcpProxy, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

func pgHostPort(t *testing.T) string {
	u, err := url.Parse(dbtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return fmt.Sprintf("%s:5432", u.Hostname())
	}
	return u.Host
}
