package secret

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Claims are the payload of a Plinth token.
type Claims struct {
	ID           string `json:"id"`
	CollectionID string `json:"collectionId"`
	Type         string `json:"type"`
	IssuedAt     int64  `json:"iat"`
	Expires      int64  `json:"exp"`
	// Refreshable is false for short-lived special-purpose tokens.
	Refreshable bool `json:"refreshable,omitempty"`
	// Email binds verification and email-change tokens to an address.
	Email string `json:"email,omitempty"`
	// SessionID names the login session an auth token belongs to.
	SessionID string `json:"sid,omitempty"`
}

// Token types: an auth token cannot be used as a file token or the reverse.
const (
	TypeAuth          = "auth"
	TypeFile          = "file"
	TypeVerification  = "verification"
	TypePasswordReset = "passwordReset"
	TypeEmailChange   = "emailChange"
)

var (
	// ErrInvalidToken covers every malformed, tampered or wrong-key token;
	// callers do not learn which check failed.
	ErrInvalidToken = errors.New("invalid or expired token")
	jwtHeader       = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
)

// SigningKey derives the key for one record: the collection's secret plus
// the record's token key, so rotating the token key (on password change or
// "log out everywhere") revokes every token issued before.
func SigningKey(collectionSecret, tokenKey string) []byte {
	return []byte(collectionSecret + "\x00" + tokenKey)
}

// Sign issues an HS256 JWT for c.
func Sign(c Claims, key []byte) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	unsigned := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac(unsigned, key)), nil
}

func mac(s string, key []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}

// Peek decodes the claims without verifying them, so the caller can find
// the record whose key verifies the signature. Never trust its result
// before Verify succeeds.
func Peek(token string) (Claims, error) {
	var c Claims
	parts := strings.Split(token, ".")
	if len(token) > 4096 || len(parts) != 3 || parts[0] != jwtHeader {
		return c, ErrInvalidToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(raw, &c) != nil || c.ID == "" || c.CollectionID == "" {
		return c, ErrInvalidToken
	}
	return c, nil
}

// Verify checks the signature (constant-time) and expiry.
func Verify(token string, key []byte, now time.Time) (Claims, error) {
	c, err := Peek(token)
	if err != nil {
		return c, err
	}
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || !hmac.Equal(sig, mac(token[:i], key)) {
		return Claims{}, ErrInvalidToken
	}
	if now.Unix() >= c.Expires {
		return Claims{}, ErrInvalidToken
	}
	return c, nil
}
