// Package schema defines collections and their typed fields: what a valid
// collection definition is, which SQL column kind each field needs, and how
// a client-supplied value is validated and normalised before it is stored.
//
// The package knows nothing about SQL dialects or HTTP; the store and
// records packages translate its definitions into DDL and queries.
package schema

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"regexp"
	"strings"
)

// Collection types.
const (
	TypeBase = "base"
	TypeAuth = "auth"
	TypeView = "view"
)

// SuperusersName is the system auth collection holding superusers.
const SuperusersName = "_superusers"

// Collection is a named set of records with typed fields and access rules.
// Rules are nil for "superusers only", "" for "everyone", otherwise a filter
// expression every request must satisfy.
type Collection struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	System     bool     `json:"system"`
	Fields     []*Field `json:"fields"`
	Indexes    []Index  `json:"indexes"`
	ListRule   *string  `json:"listRule"`
	ViewRule   *string  `json:"viewRule"`
	CreateRule *string  `json:"createRule"`
	UpdateRule *string  `json:"updateRule"`
	DeleteRule *string  `json:"deleteRule"`
	// ViewQuery is the SELECT defining a view collection.
	ViewQuery string `json:"viewQuery,omitempty"`
	// Auth holds options of auth collections.
	Auth    *AuthOptions `json:"authOptions,omitempty"`
	Created string       `json:"created"`
	Updated string       `json:"updated"`

	byName map[string]*Field
}

// AuthOptions configure an auth collection.
type AuthOptions struct {
	// TokenDuration is the lifetime of auth tokens in seconds.
	TokenDuration int64 `json:"tokenDuration"`
	// MinPasswordLength applies to the password field.
	MinPasswordLength int `json:"minPasswordLength"`
	// Lifetimes in seconds of the emailed tokens (defaults: 3 days,
	// 30 minutes, 30 minutes).
	VerificationTokenDuration  int64 `json:"verificationTokenDuration,omitempty"`
	PasswordResetTokenDuration int64 `json:"passwordResetTokenDuration,omitempty"`
	EmailChangeTokenDuration   int64 `json:"emailChangeTokenDuration,omitempty"`
	// IdentityFields can log in with a password (default ["email"]); any
	// other must be a text field with a unique index, e.g. "username".
	IdentityFields []string `json:"identityFields,omitempty"`
	// RequireVerified refuses password logins of unverified records.
	RequireVerified bool `json:"requireVerified,omitempty"`
	// ManageRule lets callers matching it change other records' email,
	// password and verified state without the old password (nil: only
	// superusers).
	ManageRule *string `json:"manageRule,omitempty"`
	// OAuth2 enables login through external providers.
	OAuth2 OAuth2Options `json:"oauth2"`
	// OTP enables login with a code sent by email.
	OTP OTPOptions `json:"otp"`
	// MFA requires a second, different method after the first succeeds.
	MFA MFAOptions `json:"mfa"`
	// Secret signs this collection's tokens together with each record's
	// token key; it never leaves the server.
	Secret string `json:"-"`
}

// OAuth2Options configure external login providers.
type OAuth2Options struct {
	Enabled   bool             `json:"enabled"`
	Providers []OAuth2Provider `json:"providers,omitempty"`
}

// OAuth2Provider is one external login provider of an auth collection,
// as data: the identity/oauth package knows how to talk to each.
type OAuth2Provider struct {
	Name         string `json:"name"` // google, github, gitlab, microsoft, discord, oidc
	DisplayName  string `json:"displayName,omitempty"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret,omitempty"`
	// Issuer is the OpenID Connect issuer URL (provider "oidc" only; also
	// accepted by gitlab for self-hosted instances).
	Issuer string `json:"issuer,omitempty"`
}

// OAuth2ProviderNames are the providers Plinth can log in with; the
// identity/oauth registry implements exactly these (its test checks).
var OAuth2ProviderNames = []string{"google", "github", "gitlab", "microsoft", "discord", "oidc"}

// Validate checks a provider configuration.
func (p OAuth2Provider) Validate() error {
	if !slices.Contains(OAuth2ProviderNames, p.Name) {
		return fmt.Errorf("unknown provider %q", p.Name)
	}
	if p.ClientID == "" {
		return fmt.Errorf("provider %s needs clientId", p.Name)
	}
	if p.Name == "oidc" && !strings.HasPrefix(p.Issuer, "https://") && !strings.HasPrefix(p.Issuer, "http://127.0.0.1") && !strings.HasPrefix(p.Issuer, "http://localhost") {
		return errors.New("provider oidc needs an https issuer URL")
	}
	return nil
}

// OTPOptions configure email one-time passwords.
type OTPOptions struct {
	Enabled  bool  `json:"enabled"`
	Duration int64 `json:"duration,omitempty"` // seconds, default 300
	Length   int   `json:"length,omitempty"`   // digits, default 6 (6..10)
}

// MFAOptions configure multi-factor authentication.
type MFAOptions struct {
	Enabled  bool  `json:"enabled"`
	Duration int64 `json:"duration,omitempty"` // seconds to complete the second factor, default 600
}

// Index is a plain or unique index over one or more fields.
type Index struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Unique  bool     `json:"unique"`
}

// Rule names, in the order the API documents them.
const (
	RuleList   = "listRule"
	RuleView   = "viewRule"
	RuleCreate = "createRule"
	RuleUpdate = "updateRule"
	RuleDelete = "deleteRule"
)

// Rule returns the rule of the given name (one of the Rule* constants).
func (c *Collection) Rule(name string) *string {
	switch name {
	case RuleList:
		return c.ListRule
	case RuleView:
		return c.ViewRule
	case RuleCreate:
		return c.CreateRule
	case RuleUpdate:
		return c.UpdateRule
	case RuleDelete:
		return c.DeleteRule
	}
	return nil
}

// IsAuth reports whether records of c can authenticate.
func (c *Collection) IsAuth() bool { return c.Type == TypeAuth }

// IsView reports whether c is a read-only view.
func (c *Collection) IsView() bool { return c.Type == TypeView }

// Field returns the field with the given name (case-insensitive), or nil.
// The "id" pseudo-field is returned too, so paths can address it.
func (c *Collection) Field(name string) *Field {
	if c.byName == nil {
		c.index()
	}
	return c.byName[strings.ToLower(name)]
}

// index builds the name lookup; collections are immutable once published in
// a Snapshot, so this runs once per loaded definition.
func (c *Collection) index() {
	m := make(map[string]*Field, len(c.Fields)+1)
	m["id"] = IDField
	for _, f := range c.Fields {
		m[strings.ToLower(f.Name)] = f
	}
	c.byName = m
}

// IDField describes the primary key every collection has.
var IDField = &Field{ID: "id", Name: "id", Type: FieldText, System: true, Required: true}

// Clone returns a deep copy, so a proposed change can be validated and
// applied without touching the published snapshot.
func (c *Collection) Clone() *Collection {
	cp := *c
	cp.byName = nil
	cp.Fields = make([]*Field, len(c.Fields))
	for i, f := range c.Fields {
		fc := *f
		fc.Values = append([]string(nil), f.Values...)
		fc.MimeTypes = append([]string(nil), f.MimeTypes...)
		fc.Thumbs = append([]string(nil), f.Thumbs...)
		fc.re = nil
		cp.Fields[i] = &fc
	}
	cp.Indexes = make([]Index, len(c.Indexes))
	for i, ix := range c.Indexes {
		cp.Indexes[i] = Index{Name: ix.Name, Columns: append([]string(nil), ix.Columns...), Unique: ix.Unique}
	}
	if c.Auth != nil {
		a := *c.Auth
		a.IdentityFields = append([]string(nil), c.Auth.IdentityFields...)
		a.OAuth2.Providers = append([]OAuth2Provider(nil), c.Auth.OAuth2.Providers...)
		cp.Auth = &a
	}
	return &cp
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidIdentifier reports whether s may name a collection, field or index.
// Only such names ever reach SQL text, and always quoted.
func ValidIdentifier(s string) bool { return identRe.MatchString(s) }

var recordIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{3,64}$`)

// ValidRecordID reports whether s is acceptable as a client-chosen record id.
func ValidRecordID(s string) bool { return recordIDRe.MatchString(s) }

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewID returns a random 15 character id from [a-z0-9] (77 bits).
func NewID() string { return RandomString(15) }

// RandomString returns n random characters from [a-z0-9] using crypto/rand.
func RandomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	// 256 % 36 != 0, so reject the top of the byte range to stay unbiased.
	out := make([]byte, 0, n)
	for len(out) < n {
		for _, x := range b {
			if x < 252 && len(out) < n {
				out = append(out, idAlphabet[x%36])
			}
		}
		if len(out) < n {
			if _, err := rand.Read(b); err != nil {
				panic("crypto/rand failed: " + err.Error())
			}
		}
	}
	return string(out)
}
