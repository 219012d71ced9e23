package schema

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
)

// FieldErrors maps a field (or option) name to its validation failure.
type FieldErrors map[string]*ValueError

// Error implements error, listing the failures in field order.
func (fe FieldErrors) Error() string {
	keys := make([]string, 0, len(fe))
	for k := range fe {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + fe[k].Message
	}
	return strings.Join(parts, "; ")
}

// APIError implements apierr.Coder: field errors are a 400 naming each
// field.
func (fe FieldErrors) APIError() *apierr.Error {
	e := apierr.BadRequest("Failed to validate the submitted data.")
	for k, v := range fe {
		e.Data[k] = apierr.FieldError{Code: v.Code, Message: v.Message}
	}
	return e
}

// reservedFieldNames are keys of the record JSON that fields may not shadow.
var thumbSpecRe = regexp.MustCompile(`^([0-9]{1,4})x([0-9]{1,4})[tbf]?$`)

var reservedFieldNames = map[string]bool{"id": true, "collectionid": true, "collectionname": true, "expand": true}

// authSystemFields are the fields every auth collection has.
func authSystemFields() []*Field {
	return []*Field{
		{ID: "email", Name: "email", Type: FieldEmail, Required: true, System: true},
		{ID: "emailVisibility", Name: "emailVisibility", Type: FieldBool, System: true},
		{ID: "verified", Name: "verified", Type: FieldBool, System: true},
		{ID: "password", Name: "password", Type: FieldPassword, Required: true, Hidden: true, System: true},
		{ID: "tokenKey", Name: "tokenKey", Type: FieldText, Hidden: true, System: true},
	}
}

// PrepareNew fills in what a freshly created collection gets by default:
// ids, auth system fields, created/updated autodate fields and auth options.
// It is applied before Validate.
func PrepareNew(c *Collection) {
	if c.ID == "" {
		c.ID = "c" + RandomString(14)
	}
	if c.Type == "" {
		c.Type = TypeBase
	}
	if c.Type == TypeAuth {
		sys := authSystemFields()
		var rest []*Field
		for _, f := range c.Fields {
			if !slices.ContainsFunc(sys, func(s *Field) bool { return strings.EqualFold(s.Name, f.Name) }) {
				rest = append(rest, f)
			}
		}
		c.Fields = append(sys, rest...)
		if c.Auth == nil {
			c.Auth = &AuthOptions{}
		}
		c.Auth.Secret = RandomString(50)
		hasEmailIdx := slices.ContainsFunc(c.Indexes, func(ix Index) bool {
			return ix.Unique && len(ix.Columns) == 1 && strings.EqualFold(ix.Columns[0], "email")
		})
		if !hasEmailIdx {
			c.Indexes = append(c.Indexes, Index{Name: "idx_" + c.Name + "_email", Columns: []string{"email"}, Unique: true})
		}
	}
	if c.Type != TypeView {
		for _, n := range []string{"created", "updated"} {
			if c.Field(n) == nil {
				c.Fields = append(c.Fields, &Field{Name: n, Type: FieldAutodate, OnCreate: true, OnUpdate: n == "updated"})
				c.byName = nil
			}
		}
	}
	c.byName = nil
	for _, f := range c.Fields {
		if f.ID == "" {
			f.ID = "f" + RandomString(9)
		}
	}
	ApplyDefaults(c)
}

// ApplyDefaults sets option defaults that are derived rather than chosen.
func ApplyDefaults(c *Collection) {
	if c.Type == TypeAuth {
		if c.Auth == nil {
			c.Auth = &AuthOptions{}
		}
		if c.Auth.TokenDuration <= 0 {
			c.Auth.TokenDuration = 7 * 24 * 3600
		}
		if c.Auth.MinPasswordLength <= 0 {
			c.Auth.MinPasswordLength = 8
		}
		if f := c.Field("password"); f != nil {
			min := float64(c.Auth.MinPasswordLength)
			f.Min = &min
		}
	}
	c.byName = nil
}

// Lookup resolves relation targets during validation.
type Lookup func(idOrName string) *Collection

// Validate checks a collection definition. lookup resolves relation
// targets; it must see the collection itself when it is being created, so
// self-relations validate.
func Validate(c *Collection, lookup Lookup) error {
	errs := FieldErrors{}
	validateNameAndType(c, errs)
	validateFields(c, lookup, errs)
	if c.Type == TypeAuth {
		validateAuth(c, errs)
	}
	validateIndexes(c, errs)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// validateNameAndType checks the collection's name, type and the
// type's own requirements (a view's query and read-only rules).
func validateNameAndType(c *Collection, errs FieldErrors) {
	if !ValidIdentifier(c.Name) {
		errs["name"] = verr("validation_invalid_name", "Must start with a letter or underscore and contain only letters, digits and underscores (max 63).")
	} else if strings.HasPrefix(c.Name, "_") && !c.System {
		errs["name"] = verr("validation_reserved_name", "Names starting with an underscore are reserved.")
	} else if l := strings.ToLower(c.Name); strings.HasPrefix(l, "sqlite_") || strings.HasPrefix(l, "pg_") {
		errs["name"] = verr("validation_reserved_name", "This name is reserved.")
	}
	switch c.Type {
	case TypeBase, TypeAuth:
		if c.ViewQuery != "" {
			errs["viewQuery"] = verr("validation_not_view", "Only view collections have a query.")
		}
	case TypeView:
		if strings.TrimSpace(c.ViewQuery) == "" {
			errs["viewQuery"] = ErrRequired
		}
		if c.CreateRule != nil || c.UpdateRule != nil || c.DeleteRule != nil {
			errs["createRule"] = verr("validation_view_readonly", "View collections are read-only: create, update and delete rules must be null.")
		}
	default:
		errs["type"] = verr("validation_invalid_type", "Must be one of base, auth, view.")
	}
}

// validateFields checks each field and that names and ids are unique.
func validateFields(c *Collection, lookup Lookup, errs FieldErrors) {
	seen := map[string]bool{}
	seenID := map[string]bool{}
	for i, f := range c.Fields {
		key := fmt.Sprintf("fields.%d", i)
		if err := validateField(c, f, lookup); err != nil {
			errs[key] = err
			continue
		}
		ln := strings.ToLower(f.Name)
		if seen[ln] {
			errs[key] = verr("validation_duplicate_field", "Duplicate field name %q.", f.Name)
		}
		if f.ID != "" && seenID[f.ID] {
			errs[key] = verr("validation_duplicate_field", "Duplicate field id %q.", f.ID)
		}
		seen[ln] = true
		seenID[f.ID] = true
	}
}

// validateAuth checks what an auth collection needs: its system fields,
// its OAuth2 providers and its identity fields.
func validateAuth(c *Collection, errs FieldErrors) {
	for _, s := range authSystemFields() {
		if f := c.Field(s.Name); f == nil || f.Type != s.Type {
			errs["fields"] = verr("validation_missing_system_field", "Auth collections must keep the %q field.", s.Name)
		}
	}
	if c.Auth == nil {
		return
	}
	seenProv := map[string]bool{}
	for _, p := range c.Auth.OAuth2.Providers {
		if err := p.Validate(); err != nil || seenProv[p.Name] {
			msg := "duplicate provider " + p.Name
			if err != nil {
				msg = err.Error()
			}
			errs["authOptions.oauth2"] = verr("validation_invalid_oauth2_provider", "%s", msg)
		}
		seenProv[p.Name] = true
	}
	for _, name := range c.Auth.IdentityFields {
		f := c.Field(name)
		unique := slices.ContainsFunc(c.Indexes, func(ix Index) bool {
			return ix.Unique && len(ix.Columns) == 1 && strings.EqualFold(ix.Columns[0], name)
		})
		if f == nil || (f.Type != FieldText && f.Type != FieldEmail) || !unique {
			errs["authOptions.identityFields"] = verr("validation_invalid_identity_field", "%q must be a text field with a unique index.", name)
		}
	}
}

// validateIndexes checks index names and columns.
func validateIndexes(c *Collection, errs FieldErrors) {
	seenIdx := map[string]bool{}
	for i, ix := range c.Indexes {
		key := fmt.Sprintf("indexes.%d", i)
		if !ValidIdentifier(ix.Name) {
			errs[key] = verr("validation_invalid_name", "Invalid index name.")
			continue
		}
		if seenIdx[strings.ToLower(ix.Name)] {
			errs[key] = verr("validation_duplicate_index", "Duplicate index name %q.", ix.Name)
		}
		seenIdx[strings.ToLower(ix.Name)] = true
		switch {
		case len(ix.Columns) == 0 || len(ix.Columns) > 8:
			errs[key] = verr("validation_invalid_index", "An index needs 1 to 8 columns.")
		case c.Type == TypeView:
			errs[key] = verr("validation_invalid_index", "View collections cannot have indexes.")
		default:
			for _, col := range ix.Columns {
				if c.Field(col) == nil {
					errs[key] = verr("validation_invalid_index", "Unknown field %q.", col)
				}
			}
		}
	}
}

func validateField(c *Collection, f *Field, lookup Lookup) *ValueError {
	if !ValidIdentifier(f.Name) {
		return verr("validation_invalid_name", "Invalid field name %q.", f.Name)
	}
	if reservedFieldNames[strings.ToLower(f.Name)] {
		return verr("validation_reserved_name", "Field name %q is reserved.", f.Name)
	}
	t := typeOf(f.Type)
	if t == nil {
		return verr("validation_invalid_type", "Unknown field type %q.", f.Type)
	}
	if f.MaxSelect < 0 || f.MaxSelect > 1000 {
		return verr("validation_invalid_options", "maxSelect must be between 0 and 1000.")
	}
	if e := checkOptions(t, f); e != nil {
		return e
	}
	return t.ValidateOptions(c, f, lookup)
}

// Snapshot is an immutable view of all collections, swapped atomically when
// the schema changes so readers never lock.
type Snapshot struct {
	Version int64
	list    []*Collection
	byKey   map[string]*Collection
}

// NewSnapshot indexes collections by id and lower-cased name.
func NewSnapshot(version int64, cols []*Collection) *Snapshot {
	s := &Snapshot{Version: version, list: cols, byKey: make(map[string]*Collection, 2*len(cols))}
	for _, c := range cols {
		c.index()
		for _, f := range c.Fields {
			f.Regexp()
		}
		s.byKey[c.ID] = c
		s.byKey[strings.ToLower(c.Name)] = c
	}
	return s
}

// Get finds a collection by id or case-insensitive name.
func (s *Snapshot) Get(idOrName string) *Collection {
	if c, ok := s.byKey[idOrName]; ok {
		return c
	}
	return s.byKey[strings.ToLower(idOrName)]
}

// All returns the collections in creation order. Callers must not modify them.
func (s *Snapshot) All() []*Collection { return s.list }
