package collections

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/schema"
)

// PocketBase's collection definitions (what its "export collections"
// writes and its SDK's collections service sends) differ from Plinth's in
// a few keys. fromPocketBase rewrites such a definition into Plinth's
// shape before the strict decode, so both are accepted; anything with no
// Plinth equivalent is refused by name rather than dropped, so an import
// never quietly weakens a schema.

// pbOnlyKeys are top-level keys only PocketBase definitions have.
var pbOnlyKeys = []string{"passwordAuth", "authToken", "oauth2", "otp", "mfa", "authRule", "manageRule",
	"verificationToken", "passwordResetToken", "emailChangeToken", "fileToken", "authAlert",
	"verificationTemplate", "resetPasswordTemplate", "confirmEmailChangeTemplate"}

// pbFieldKeys are field keys only PocketBase definitions have.
var pbFieldKeys = []string{"presentable", "primaryKey", "autogeneratePattern", "noDecimal", "exceptDomains",
	"onlyDomains", "convertURLs", "minSelect", "cost"}

// authSystemNames are the auth fields Plinth defines itself.
var authSystemNames = map[string]bool{"email": true, "emailvisibility": true, "verified": true, "password": true, "tokenkey": true}

// pbBadRequest is the error for a PocketBase definition that cannot be
// taken over.
func pbBadRequest(key, msg string) error {
	return apierr.BadRequest("Unsupported PocketBase collection definition.").With(key, "validation_unsupported", msg)
}

// isPocketBase reports whether a decoded definition is in PocketBase's
// shape: a PocketBase-only key, SQL-string indexes, or fields with
// PocketBase's keys or the listed system id field.
func isPocketBase(m map[string]any) bool {
	for _, k := range pbOnlyKeys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	if ixs, ok := m["indexes"].([]any); ok {
		for _, ix := range ixs {
			if _, ok := ix.(string); ok {
				return true
			}
		}
	}
	fields, _ := m["fields"].([]any)
	for _, f := range fields {
		fm, _ := f.(map[string]any)
		if fm["name"] == "id" {
			return true
		}
		for _, k := range pbFieldKeys {
			if _, ok := fm[k]; ok {
				return true
			}
		}
	}
	return false
}

// fromPocketBase rewrites m (a decoded definition) into Plinth's shape
// in place. base is the collection being updated (nil on create): its
// auth system fields are kept and its field ids reused by name, so an
// update in PocketBase's shape changes fields rather than replacing them.
func fromPocketBase(m map[string]any, base *schema.Collection) error {
	if !isPocketBase(m) {
		return nil
	}
	typ, _ := m["type"].(string)
	if typ == "" && base != nil {
		typ = base.Type
	}
	name, _ := m["name"].(string)
	if name == "" && base != nil {
		name = base.Name
	}
	if fields, ok := m["fields"].([]any); ok {
		out, err := pbFields(fields, typ, base)
		if err != nil {
			return err
		}
		m["fields"] = out
	}
	if ixs, ok := m["indexes"].([]any); ok {
		out := make([]any, 0, len(ixs))
		for i, ix := range ixs {
			s, ok := ix.(string)
			if !ok {
				out = append(out, ix)
				continue
			}
			parsed, err := ParseIndexSQL(s, name)
			if err != nil {
				return apierr.BadRequest("Invalid index.").With(fmt.Sprintf("indexes.%d", i), "validation_invalid_index", err.Error())
			}
			if typ == schema.TypeAuth && len(parsed.Columns) == 1 && strings.EqualFold(parsed.Columns[0], "tokenKey") {
				continue // Plinth keeps token keys unique by construction
			}
			out = append(out, map[string]any{"name": parsed.Name, "columns": parsed.Columns, "unique": parsed.Unique})
		}
		if typ == schema.TypeAuth && base != nil && !hasEmailIndex(out) {
			// PocketBase lists the email index itself; a definition that
			// does not keeps the one Plinth made (logins need it).
			for _, ix := range base.Indexes {
				if ix.Unique && len(ix.Columns) == 1 && strings.EqualFold(ix.Columns[0], "email") {
					out = append(out, map[string]any{"name": ix.Name, "columns": ix.Columns, "unique": true})
				}
			}
		}
		m["indexes"] = out
	}
	return pbAuthOptions(m, typ)
}

// hasEmailIndex reports whether translated indexes have a unique one on email.
func hasEmailIndex(ixs []any) bool {
	for _, ix := range ixs {
		m, _ := ix.(map[string]any)
		var cols []string
		switch c := m["columns"].(type) {
		case []string:
			cols = c
		case []any:
			for _, x := range c {
				s, _ := x.(string)
				cols = append(cols, s)
			}
		}
		if m["unique"] == true && len(cols) == 1 && strings.EqualFold(cols[0], "email") {
			return true
		}
	}
	return false
}

// pbFields rewrites a PocketBase field list.
func pbFields(fields []any, typ string, base *schema.Collection) ([]any, error) {
	out := make([]any, 0, len(fields))
	if typ == schema.TypeAuth && base != nil {
		for _, f := range base.Fields {
			if authSystemNames[strings.ToLower(f.Name)] {
				out = append(out, f)
			}
		}
	}
	for i, raw := range fields {
		f, ok := raw.(map[string]any)
		if !ok {
			out = append(out, raw)
			continue
		}
		key := fmt.Sprintf("fields.%d", i)
		name, _ := f["name"].(string)
		ftype, _ := f["type"].(string)
		if name == "id" && ftype == "text" {
			continue // the primary key every collection has
		}
		if typ == schema.TypeAuth && authSystemNames[strings.ToLower(name)] {
			continue // Plinth's own (re-added on create, kept from base on update)
		}
		if base != nil {
			if bf := base.Field(name); bf != nil && bf.Name != "id" {
				f["id"] = bf.ID
			}
		}
		delete(f, "system")
		delete(f, "presentable")
		delete(f, "primaryKey")
		if ftype == "editor" {
			f["type"], ftype = schema.FieldText, schema.FieldText
			delete(f, "convertURLs")
			delete(f, "maxSize")
		}
		if p, _ := f["autogeneratePattern"].(string); p != "" {
			return nil, pbBadRequest(key, "autogeneratePattern is not supported (field "+name+").")
		}
		delete(f, "autogeneratePattern")
		for _, k := range []string{"exceptDomains", "onlyDomains"} {
			if l, _ := f[k].([]any); len(l) > 0 {
				return nil, pbBadRequest(key, k+" is not supported (field "+name+").")
			}
			delete(f, k)
		}
		if n, _ := f["minSelect"].(float64); n > 0 {
			return nil, pbBadRequest(key, "minSelect is not supported (field "+name+"); use required.")
		}
		delete(f, "minSelect")
		if nd, ok := f["noDecimal"].(bool); ok {
			if nd {
				f["onlyInt"] = true
			}
			delete(f, "noDecimal")
		}
		switch ftype {
		case schema.FieldText:
			// PocketBase writes 0 for "no bound".
			for _, k := range []string{"min", "max"} {
				if n, ok := f[k].(float64); ok && n == 0 {
					delete(f, k)
				}
			}
		case schema.FieldDate:
			for _, k := range []string{"min", "max"} {
				switch v := f[k].(type) {
				case nil:
					delete(f, k)
				case string:
					if v != "" {
						return nil, pbBadRequest(key, "date bounds are not supported (field "+name+").")
					}
					delete(f, k)
				}
			}
		}
		for k, v := range f {
			if v == nil {
				delete(f, k) // PocketBase writes null for unset numbers
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// pbAuthOptions moves PocketBase's auth keys into authOptions.
func pbAuthOptions(m map[string]any, typ string) error {
	opts, _ := m["authOptions"].(map[string]any)
	if opts == nil {
		opts = map[string]any{}
	}
	seen := false
	take := func(k string) (map[string]any, bool) {
		v, ok := m[k]
		delete(m, k)
		if ok {
			seen = true
		}
		obj, _ := v.(map[string]any)
		return obj, ok
	}
	if pa, ok := take("passwordAuth"); ok {
		if en, ok := pa["enabled"].(bool); ok && !en {
			return pbBadRequest("passwordAuth", "Plinth auth collections always allow password login; passwordAuth.enabled = false is not supported.")
		}
		if ids, ok := pa["identityFields"]; ok {
			opts["identityFields"] = ids
		}
	}
	if at, ok := take("authToken"); ok && at["duration"] != nil {
		opts["tokenDuration"] = at["duration"]
	}
	for pbKey, key := range map[string]string{"verificationToken": "verificationTokenDuration",
		"passwordResetToken": "passwordResetTokenDuration", "emailChangeToken": "emailChangeTokenDuration"} {
		if t, ok := take(pbKey); ok && t["duration"] != nil {
			opts[key] = t["duration"]
		}
	}
	// Tokens for protected files, login alerts and per-collection mail
	// templates are server-wide in Plinth (settings), so these are not
	// collection options; their presence changes nothing.
	for _, k := range []string{"fileToken", "authAlert", "verificationTemplate", "resetPasswordTemplate", "confirmEmailChangeTemplate"} {
		take(k)
	}
	if o, ok := take("oauth2"); ok {
		out := map[string]any{"enabled": o["enabled"] == true}
		provs, _ := o["providers"].([]any)
		var list []any
		for i, p := range provs {
			pm, _ := p.(map[string]any)
			prov := map[string]any{}
			for _, k := range []string{"name", "clientId", "clientSecret", "displayName"} {
				if v, ok := pm[k].(string); ok && v != "" {
					prov[k] = v
				}
			}
			if iss, ok := pm["issuer"].(string); ok {
				prov["issuer"] = iss
			}
			if n, _ := prov["name"].(string); n == "oidc" && prov["issuer"] == nil {
				return pbBadRequest(fmt.Sprintf("oauth2.providers.%d", i), "the oidc provider needs an issuer URL in Plinth (it discovers the endpoints).")
			}
			list = append(list, prov)
		}
		if len(list) > 0 {
			out["providers"] = list
		}
		opts["oauth2"] = out
	}
	if o, ok := take("otp"); ok {
		out := map[string]any{"enabled": o["enabled"] == true}
		for _, k := range []string{"duration", "length"} {
			if n, ok := o[k].(float64); ok && n > 0 {
				out[k] = n
			}
		}
		opts["otp"] = out
	}
	if o, ok := take("mfa"); ok {
		if r, _ := o["rule"].(string); r != "" {
			return pbBadRequest("mfa", "mfa.rule is not supported: Plinth's MFA applies to every login of the collection.")
		}
		out := map[string]any{"enabled": o["enabled"] == true}
		if n, ok := o["duration"].(float64); ok && n > 0 {
			out["duration"] = n
		}
		opts["mfa"] = out
	}
	if v, ok := m["manageRule"]; ok {
		seen = true
		delete(m, "manageRule")
		if v != nil {
			opts["manageRule"] = v
		}
	}
	if v, ok := m["authRule"]; ok {
		seen = true
		delete(m, "authRule")
		switch r, _ := v.(string); {
		case v != nil && strings.TrimSpace(r) == "":
		case v != nil && verifiedRuleRe.MatchString(r):
			opts["requireVerified"] = true
		default:
			return pbBadRequest("authRule", `authRule is supported only as "" (everyone) or "verified = true" (requireVerified).`)
		}
	}
	if seen && typ == schema.TypeAuth {
		m["authOptions"] = opts
	}
	return nil
}

// verifiedRuleRe is the one non-trivial authRule Plinth has an option for.
var verifiedRuleRe = regexp.MustCompile(`^\s*verified\s*=\s*true\s*$`)

// indexSQLRe is the one index statement form accepted: PocketBase's
// export writes exactly this (names quoted with backticks or double
// quotes or not at all), optionally limited to non-empty values.
var indexSQLRe = regexp.MustCompile("(?is)^\\s*CREATE\\s+(UNIQUE\\s+)?INDEX\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?[`\"]?(\\w+)[`\"]?\\s+ON\\s+[`\"]?(\\w+)[`\"]?\\s*\\(([^()]*)\\)\\s*(?:WHERE\\s+[`\"]?(\\w+)[`\"]?\\s*!=\\s*''\\s*)?;?\\s*$")

// indexColRe is one column of the list: a name with an optional
// direction and collation, which Plinth's indexes do not vary.
var indexColRe = regexp.MustCompile("(?is)^\\s*[`\"]?(\\w+)[`\"]?(?:\\s+COLLATE\\s+\\w+)?(?:\\s+(?:ASC|DESC))?\\s*$")

// ParseIndexSQL reads a PocketBase index statement ("CREATE UNIQUE INDEX
// idx ON posts (slug)") of collection table into an Index. Only a plain
// column list is accepted (a WHERE limited to non-empty values of the
// single column is the partial index Plinth makes anyway): expressions,
// other conditions and other tables are refused.
func ParseIndexSQL(stmt, table string) (schema.Index, error) {
	m := indexSQLRe.FindStringSubmatch(stmt)
	if m == nil {
		return schema.Index{}, fmt.Errorf("only CREATE [UNIQUE] INDEX name ON %s (column, ...) is supported: %q", table, stmt)
	}
	if table != "" && !strings.EqualFold(m[3], table) {
		return schema.Index{}, fmt.Errorf("the index is on %q, not on this collection (%q)", m[3], table)
	}
	ix := schema.Index{Name: m[2], Unique: m[1] != ""}
	for _, part := range strings.Split(m[4], ",") {
		cm := indexColRe.FindStringSubmatch(part)
		if cm == nil {
			return schema.Index{}, fmt.Errorf("only plain column names are supported in an index, not %q", strings.TrimSpace(part))
		}
		ix.Columns = append(ix.Columns, cm[1])
	}
	if m[5] != "" && (len(ix.Columns) != 1 || !strings.EqualFold(m[5], ix.Columns[0])) {
		return schema.Index{}, fmt.Errorf("a WHERE clause is supported only as the indexed column != ''")
	}
	return ix, nil
}

// idField is the primary key as collection definitions list it.
var idField = schema.Field{ID: "id", Name: "id", Type: schema.FieldText, Required: true, System: true}

// apiCollection is a collection as the API shows it: secrets redacted and
// the system id field listed first in fields, as PocketBase lists it
// (the definition is accepted back as is: the id field is skipped).
func apiCollection(c *schema.Collection) any {
	if c == nil {
		return nil
	}
	c = redact(c)
	return &struct {
		*schema.Collection
		Fields []*schema.Field `json:"fields"`
	}{c, append([]*schema.Field{&idField}, c.Fields...)}
}

// decodePocketBaseAware rewrites a PocketBase-shaped body into Plinth's
// shape (see fromPocketBase); other bodies pass through unchanged.
func decodePocketBaseAware(body []byte, base *schema.Collection) ([]byte, error) {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || m == nil || !isPocketBase(m) {
		return body, nil
	}
	if err := fromPocketBase(m, base); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}
