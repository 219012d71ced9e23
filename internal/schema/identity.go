package schema

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// NormalizeIdentity is the canonical form of an email address or login
// identity: Unicode NFKC (so compatibility lookalikes such as fullwidth
// letters become their plain forms), surrounding Unicode white space
// removed, lower case. Auth emails are stored in this form and looked up
// in it, and every authentication rate limit is keyed on it: two
// spellings that reach the same account must share one bucket, or an
// attacker gets a fresh allowance per spelling.
func NormalizeIdentity(s string) string {
	return strings.ToLower(strings.TrimSpace(norm.NFKC.String(s)))
}
