package schema

import "testing"

func TestNormalizeIdentity(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"bob@example.com", "bob@example.com"},
		{"  Bob@Example.COM\t", "bob@example.com"},
		{"\u00a0bob@example.com\n", "bob@example.com"},
		{"\uff42\uff4f\uff42@example.com", "bob@example.com"},
		{"bob\uff20example.com", "bob@example.com"},
		{"ÉLODIE@example.com", "élodie@example.com"},
		{"E\u0301lodie@example.com", "élodie@example.com"}, // combining accent composes
		{"", ""},
	} {
		if got := NormalizeIdentity(c.in); got != c.want {
			t.Errorf("NormalizeIdentity(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
