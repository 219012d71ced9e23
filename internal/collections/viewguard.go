package collections

import (
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// secretColumns are the columns of an auth collection that must never be
// published: the password hash and the key that signs every token.
var secretColumns = map[string]bool{"password": true, "tokenkey": true}

// checkViewSecrets refuses a view query that could publish secrets: one
// that reads Plinth's system tables (collection definitions hold signing
// secrets; sessions, codes, queued mail and settings are private), or that
// reads an auth collection and names a secret column or selects all
// columns (`*`, `t.*`). View records are served like any other, so a
// view over such data would hand it to whoever its rules admit.
//
// The check reads the query's tokens, not its text: quoting and case do
// not hide a name ("PassWord", `tokenKey`, [password]), and literals are
// skipped so a string that merely contains a name is not refused.
func checkViewSecrets(q string, snap *schema.Snapshot) error {
	toks := sqlTokens(q)
	auth := map[string]bool{}
	for _, c := range snap.All() {
		if c.IsAuth() {
			auth[strings.ToLower(c.Name)] = true
		}
	}
	readsAuth := false
	for _, t := range toks {
		if sqldb.IsSystemTable(t) {
			return errViewSecret("View queries cannot read Plinth's system table " + t + ".")
		}
		readsAuth = readsAuth || auth[t]
	}
	if !readsAuth {
		return nil
	}
	for i, t := range toks {
		if secretColumns[t] {
			return errViewSecret("View queries cannot read the " + t + " column of auth collections.")
		}
		if t == "*" && i > 0 && (toks[i-1] == "select" || toks[i-1] == "," || toks[i-1] == "." || toks[i-1] == "distinct" || toks[i-1] == "all") {
			return errViewSecret("View queries that read an auth collection must list their columns (no *), so secret columns are never selected.")
		}
	}
	return nil
}

func errViewSecret(msg string) error {
	return apierr.BadRequest("Invalid view query.").With("viewQuery", "validation_view_secret", msg)
}

// sqlTokens splits SQL into lower-cased identifiers (quotes removed),
// keywords and single punctuation characters; literals and comments are
// dropped. It is long and branchy for a reason: a lexer is one loop with
// one case per token class, and splitting it would scatter the position
// bookkeeping across functions.
func sqlTokens(q string) []string {
	var out []string
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'':
			j := i + 1
			for j < len(q) {
				if q[j] == '\'' {
					if j+1 < len(q) && q[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return out
			}
			i += end + 4
		case c == '"' || c == '`' || c == '[':
			closer := byte('"')
			if c == '`' {
				closer = '`'
			} else if c == '[' {
				closer = ']'
			}
			j := strings.IndexByte(q[i+1:], closer)
			if j < 0 {
				out = append(out, strings.ToLower(q[i+1:]))
				return out
			}
			out = append(out, strings.ToLower(q[i+1:i+1+j]))
			i += j + 2
		case c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80:
			j := i
			for j < len(q) && (q[j] == '_' || q[j] == '$' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9' || q[j] >= 0x80) {
				j++
			}
			out = append(out, strings.ToLower(q[i:j]))
			i = j
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		default:
			out = append(out, string(c))
			i++
		}
	}
	return out
}
