// Package secrets seals the client secrets calsync stores with AES-256-GCM.
// Each ciphertext is stored beside the id of the key that sealed it, so keys
// can rotate: old keys stay listed for opening while everything is re-sealed
// under the current one. The additional data binds a ciphertext to its row
// (the company id), so a sealed secret copied to another company's row does
// not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the length of an AES-256 key.
const KeySize = 32

// ErrUnknownKey means a ciphertext was sealed under a key the ring does not
// hold; add that key to CALSYNC_ENCRYPTION_OLD_KEYS.
var ErrUnknownKey = errors.New("sealed with an encryption key that is not configured")

// ErrOpen means the ciphertext, key or additional data do not match.
var ErrOpen = errors.New("sealed secret cannot be opened (wrong key, wrong row or tampered)")

// KeyID names a key without revealing it: the first 12 hex digits of its
// SHA-256.
func KeyID(key []byte) string {
	h := sha256.Sum256(key)
	return "k" + hex.EncodeToString(h[:6])
}

// Keyring holds the current key and the old ones still accepted for opening.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyring builds a ring sealing under current and opening with current
// and old.
func NewKeyring(current []byte, old ...[]byte) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, key := range append([][]byte{current}, old...) {
		if len(key) != KeySize {
			return nil, fmt.Errorf("encryption key %d is %d bytes, want %d", i, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("building cipher: %w", err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("building GCM: %w", err)
		}
		id := KeyID(key)
		if i == 0 {
			k.current = id
		}
		k.aeads[id] = gcm
	}
	return k, nil
}

// CurrentID is the id of the sealing key.
func (k *Keyring) CurrentID() string { return k.current }

// Seal encrypts plaintext under the current key; the result is nonce ||
// ciphertext.
func (k *Keyring) Seal(plaintext []byte, aad string) (sealed []byte, keyID string, err error) {
	gcm := k.aeads[k.current]
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", fmt.Errorf("reading nonce: %w", err)
	}
	return gcm.Seal(nonce, nonce, plaintext, []byte(aad)), k.current, nil
}

// Open decrypts what Seal produced under keyID with the same aad.
func (k *Keyring) Open(sealed []byte, keyID, aad string) ([]byte, error) {
	gcm, ok := k.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", keyID, ErrUnknownKey)
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, ErrOpen
	}
	nonce, ct := sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():]
	out, err := gcm.Open(nil, nonce, ct, []byte(aad))
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// DevKey is the fixed key used only with CALSYNC_GRAPH=emulator when no key
// is configured; it protects nothing and is never accepted otherwise.
func DevKey() []byte {
	h := sha256.Sum256([]byte("calsync emulator-only development key; not a secret"))
	return h[:]
}
