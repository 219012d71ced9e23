package collections

import (
	"slices"
	"testing"
)

func TestSQLTokens(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{`SELECT "PassWord", [tokenKey], ` + "`x`" + ` FROM users`, []string{"select", "password", ",", "tokenkey", ",", "x", "from", "users"}},
		{`SELECT 'it''s password' AS a -- password here
		  /* tokenKey */ FROM t`, []string{"select", "as", "a", "from", "t"}},
		{`SELECT u.* FROM users u`, []string{"select", "u", ".", "*", "from", "users", "u"}},
		{`SELECT count(*) FROM users`, []string{"select", "count", "(", "*", ")", "from", "users"}},
	} {
		if got := sqlTokens(c.in); !slices.Equal(got, c.want) {
			t.Errorf("sqlTokens(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
