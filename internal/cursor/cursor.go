// Package cursor makes the opaque Relay-style cursors of calsync's
// connections. A cursor is a position (a global sequence number) sealed
// for one company and one kind: one AES block holding the position and a
// MAC of (kind, company, position). It reveals nothing — not how many
// changes other companies had — and a cursor of another company or kind
// is refused like a forged one.
package cursor

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/tehaishokunin/calsync/apperr"
)

// Codec seals and opens cursors. Every replica derives the same keys from
// the same secret, so a cursor from one is good on all.
type Codec struct {
	keys []codecKey // the first seals; all open (key rotation)
}

type codecKey struct {
	block cipher.Block
	mac   []byte
}

// NewCodec derives cursor keys from secrets (the encryption key first,
// then the old ones still accepted while keys rotate).
func NewCodec(secrets ...[]byte) *Codec {
	c := &Codec{}
	for _, s := range secrets {
		derive := func(label string) []byte {
			m := hmac.New(sha256.New, s)
			m.Write([]byte("calsync cursor v1 " + label))
			return m.Sum(nil)
		}
		block, err := aes.NewCipher(derive("enc")[:16])
		if err != nil {
			panic(err) // 16 bytes is always a valid AES key
		}
		c.keys = append(c.keys, codecKey{block: block, mac: derive("mac")})
	}
	return c
}

func (k codecKey) tag(kind, scope string, n uint64) []byte {
	m := hmac.New(sha256.New, k.mac)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write(b[:])
	return m.Sum(nil)[:8]
}

// Encode seals position n of kind (e.g. "chg", "link") for scope (the
// company).
func (c *Codec) Encode(kind, scope string, n int64) string {
	k := c.keys[0]
	var plain, sealed [16]byte
	binary.BigEndian.PutUint64(plain[:8], uint64(n))
	copy(plain[8:], k.tag(kind, scope, uint64(n)))
	k.block.Encrypt(sealed[:], plain[:])
	return base64.RawURLEncoding.EncodeToString(sealed[:])
}

// Decode opens a cursor of kind for scope, or answers INVALID_INPUT on
// field "after". A cursor in the unsealed form calsync issued before
// (base64 of "kind:position") is still read, so a host holding one when
// calsync is upgraded goes on where it was: it names a position in the
// caller's own feed only, which the caller could read from the start
// anyway.
func (c *Codec) Decode(kind, scope, s string) (int64, error) {
	sealed, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil && strings.HasPrefix(string(sealed), kind+":") {
		if n, err := strconv.ParseInt(strings.TrimPrefix(string(sealed), kind+":"), 10, 64); err == nil && n >= 0 {
			return n, nil
		}
	}
	if err == nil && len(sealed) == 16 {
		for _, k := range c.keys {
			var plain [16]byte
			k.block.Decrypt(plain[:], sealed)
			n := binary.BigEndian.Uint64(plain[:8])
			if hmac.Equal(plain[8:], k.tag(kind, scope, n)) && int64(n) >= 0 {
				return int64(n), nil
			}
		}
	}
	return 0, apperr.New(apperr.InvalidInput, "カーソルが正しくありません。", "The cursor is not valid.").WithField("after")
}
