package identity

import (
	"testing"
	"time"

	"github.com/plinthhq/plinth/internal/schema"
)

func TestRequestEmail(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{" Ana@Example.com ", "ana@example.com", true},
		{"\uff41na@example.com", "ana@example.com", true},
		{"", "", false},
		{"   ", "", false},
		{string(make([]byte, 300)), "", false},
	} {
		got, err := requestEmail(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("requestEmail(%q) = %q, %v", c.in, got, err)
		}
	}
}

func TestOTPHashBindsCollectionAndID(t *testing.T) {
	a := &schema.Collection{ID: "a", Auth: &schema.AuthOptions{Secret: "s1"}}
	b := &schema.Collection{ID: "b", Auth: &schema.AuthOptions{Secret: "s2"}}
	h := otpHash(a, "otp1", "123456")
	if h != otpHash(a, "otp1", "123456") {
		t.Error("not deterministic")
	}
	for _, other := range []string{otpHash(a, "otp2", "123456"), otpHash(a, "otp1", "123457"), otpHash(b, "otp1", "123456")} {
		if other == h {
			t.Error("hash does not bind collection secret, id and code")
		}
	}
}

func TestDuration(t *testing.T) {
	if duration(0, 60) != time.Minute || duration(5, 60) != 5*time.Second || duration(-1, 2) != 2*time.Second {
		t.Error("duration defaults")
	}
}
