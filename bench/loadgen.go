package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// poster sends JSON POSTs over kept-alive HTTP/1.1 connections that it
// writes and reads itself: one write and, mostly, one read per request.
// The load generator shares the machine's two CPUs with calsync and
// Postgres, and net/http's client spent about 100 µs of CPU per request
// (two goroutines and their hand-offs per connection, a header map and a
// body reader per request): half a CPU at the saturation rates, taken from
// what it measures. pgbench, the baseline, drives Postgres from lean C.
type poster struct {
	addr, path, host string
	timeout          time.Duration
}

func newPoster(rawURL string, timeout time.Duration) (*poster, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("poster speaks plain http, not %q", u.Scheme)
	}
	return &poster{addr: u.Host, path: u.RequestURI(), host: u.Host, timeout: timeout}, nil
}

// postConn is one kept-alive connection; a goroutine owns it.
type postConn struct {
	p   *poster
	c   net.Conn
	r   *bufio.Reader
	req []byte
}

// conn is a connection for one goroutine to use, dialled at its first
// request.
func (p *poster) conn() *postConn { return &postConn{p: p} }

func (pc *postConn) close() {
	if pc.c != nil {
		_ = pc.c.Close()
	}
}

// post sends body and returns the answer's status; the connection is
// dialled again when the server closed it.
func (pc *postConn) post(body []byte) (int, error) {
	if pc.c == nil {
		c, err := net.DialTimeout("tcp", pc.p.addr, pc.p.timeout)
		if err != nil {
			return 0, err
		}
		pc.c, pc.r = c, bufio.NewReaderSize(c, 4096)
	}
	b := pc.req[:0]
	b = append(b, "POST "...)
	b = append(b, pc.p.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, pc.p.host...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	pc.req = b
	_ = pc.c.SetDeadline(time.Now().Add(pc.p.timeout))
	status, keep, err := pc.exchange(b)
	if err != nil || !keep {
		_ = pc.c.Close()
		pc.c = nil
	}
	return status, err
}

var errBadAnswer = errors.New("malformed HTTP answer")

// exchange writes one request and reads its answer: the status line,
// the headers it needs (Content-Length, Transfer-Encoding, Connection) and
// the body, which it discards.
func (pc *postConn) exchange(req []byte) (status int, keep bool, err error) {
	if _, err := pc.c.Write(req); err != nil {
		return 0, false, err
	}
	line, err := pc.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, false, errBadAnswer
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errBadAnswer
	}
	length, chunked, keep := int64(0), false, true
	for {
		line, err := pc.r.ReadSlice('\n')
		if err != nil {
			return status, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, false, errBadAnswer
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return status, false, errBadAnswer
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	if !chunked {
		_, err = pc.r.Discard(int(length))
		return status, keep, err
	}
	for {
		line, err := pc.r.ReadSlice('\n')
		if err != nil {
			return status, false, err
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
		if err != nil || size < 0 {
			return status, false, errBadAnswer
		}
		if _, err := pc.r.Discard(int(size) + 2); err != nil { // the chunk and its CRLF
			return status, false, err
		}
		if size == 0 {
			return status, keep, nil // no trailers from the servers measured here
		}
	}
}
