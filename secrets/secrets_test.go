package secrets

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func key(t *testing.T) []byte {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	k1 := key(t)
	ring, err := NewKeyring(k1)
	if err != nil {
		t.Fatal(err)
	}
	sealed, id, err := ring.Seal([]byte("s3cr3t-value"), "company-a")
	if err != nil {
		t.Fatal(err)
	}
	if id != KeyID(k1) || bytes.Contains(sealed, []byte("s3cr3t")) {
		t.Fatalf("id %s, sealed %x", id, sealed)
	}
	again, _, _ := ring.Seal([]byte("s3cr3t-value"), "company-a")
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of the same secret are equal: nonce reuse")
	}
	got, err := ring.Open(sealed, id, "company-a")
	if err != nil || string(got) != "s3cr3t-value" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := ring.Open(sealed, id, "company-b"); !errors.Is(err, ErrOpen) {
		t.Fatalf("another row's aad opened it: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := ring.Open(sealed, id, "company-a"); !errors.Is(err, ErrOpen) {
		t.Fatalf("tampered ciphertext opened: %v", err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := key(t), key(t)
	oldRing, _ := NewKeyring(oldKey)
	sealed, oldID, _ := oldRing.Seal([]byte("v"), "c")

	newOnly, _ := NewKeyring(newKey)
	if _, err := newOnly.Open(sealed, oldID, "c"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("without the old key: %v", err)
	}
	both, _ := NewKeyring(newKey, oldKey)
	if got, err := both.Open(sealed, oldID, "c"); err != nil || string(got) != "v" {
		t.Fatalf("old key listed: %q %v", got, err)
	}
	resealed, id, _ := both.Seal([]byte("v"), "c")
	if id != KeyID(newKey) || id == oldID {
		t.Fatalf("resealed under %s", id)
	}
	if got, err := newOnly.Open(resealed, id, "c"); err != nil || string(got) != "v" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := NewKeyring(make([]byte, 16)); err == nil {
		t.Fatal("short key accepted")
	}
}
