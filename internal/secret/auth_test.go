package secret

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var fast = Argon2Params{Memory: 256, Time: 1, Threads: 1}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("correct horse", fast)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPassword("correct horse", fast)
	if h == h2 || !strings.HasPrefix(h, "$argon2id$v=19$m=256,t=1,p=1$") {
		t.Fatalf("hash %q (salted? %v)", h, h != h2)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	cases := []struct {
		hash, pw string
		ok       bool
		err      bool
	}{
		{h, "correct horse", true, false},
		{h, "correct horse ", false, false},
		{h, "", false, false},
		{string(bc), "correct horse", true, false},
		{string(bc), "wrong", false, false},
		{"", "x", false, true},
		{"$argon2id$v=19$m=0,t=1,p=1$AAAA$AAAA", "x", false, true},
		{"$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA", "x", false, true},
		{"$argon2id$v=18$m=256,t=1,p=1$AAAA$AAAA", "x", false, true},
		{"$argon2i$v=19$m=256,t=1,p=1$AAAA$AAAA", "x", false, true},
	}
	for _, c := range cases {
		ok, err := CheckPassword(c.hash, c.pw)
		if ok != c.ok || (err != nil) != c.err {
			t.Errorf("CheckPassword(%q, %q) = %v, %v", c.hash, c.pw, ok, err)
		}
	}
}

func TestTokens(t *testing.T) {
	now := time.Now()
	key := SigningKey("collection-secret", "record-key")
	c := Claims{ID: "u1", CollectionID: "c1", Type: TypeAuth, IssuedAt: now.Unix(), Expires: now.Add(time.Hour).Unix()}
	tok, err := Sign(c, key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Verify(tok, key, now); err != nil || got != c {
		t.Fatalf("verify: %v %+v", err, got)
	}
	parts := strings.Split(tok, ".")
	forged, _ := Sign(Claims{ID: "admin", CollectionID: "c1", Type: TypeAuth, Expires: now.Add(time.Hour).Unix()}, []byte("guess"))
	fparts := strings.Split(forged, ".")
	cases := []struct {
		name string
		tok  string
		key  []byte
		at   time.Time
	}{
		{"other record key", tok, SigningKey("collection-secret", "rotated"), now},
		{"other collection secret", tok, SigningKey("other", "record-key"), now},
		{"expired", tok, key, now.Add(2 * time.Hour)},
		{"swapped payload", parts[0] + "." + fparts[1] + "." + parts[2], key, now},
		{"forged signature", forged, key, now},
		{"alg none", "eyJhbGciOiJub25lIn0." + parts[1] + ".", key, now},
		{"truncated", parts[0] + "." + parts[1], key, now},
		{"garbage", "a.b.c", key, now},
		{"empty", "", key, now},
	}
	for _, c := range cases {
		if _, err := Verify(c.tok, c.key, c.at); err != ErrInvalidToken {
			t.Errorf("%s: err %v, want ErrInvalidToken", c.name, err)
		}
	}
}
