package schema

import (
	"net/mail"
	"net/url"
	"strings"
)

// emailType: one address, as written (auth emails are canonicalised by
// the records layer with NormalizeIdentity).
type emailType struct {
	single
	noOptions
}

func (emailType) Name() string       { return FieldEmail }
func (emailType) Column() ColumnKind { return ColText }

func (emailType) Normalize(f *Field, v any) (any, error) {
	s, err := asString(v)
	if err != nil {
		return nil, err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return blank(f, "")
	}
	a, perr := mail.ParseAddress(s)
	if perr != nil || a.Address != s || len(s) > 254 {
		return nil, verr("validation_invalid_email", "Must be a valid email address.")
	}
	return s, nil
}

// urlType: an absolute http(s) URL.
type urlType struct {
	single
	noOptions
}

func (urlType) Name() string       { return FieldURL }
func (urlType) Column() ColumnKind { return ColText }

func (urlType) Normalize(f *Field, v any) (any, error) {
	s, err := asString(v)
	if err != nil {
		return nil, err
	}
	if s == "" {
		return blank(f, "")
	}
	u, perr := url.Parse(s)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(s) > 2048 {
		return nil, verr("validation_invalid_url", "Must be a valid http(s) URL.")
	}
	return s, nil
}

// dateType: a moment, accepted in several layouts and stored in
// DateLayout (UTC, sortable as text).
type dateType struct {
	single
	noOptions
}

func (dateType) Name() string       { return FieldDate }
func (dateType) Column() ColumnKind { return ColText }

func (dateType) Normalize(f *Field, v any) (any, error) {
	s, err := asString(v)
	if err != nil {
		return nil, err
	}
	if s == "" {
		return blank(f, "")
	}
	t, ok := ParseDate(s)
	if !ok {
		return nil, verr("validation_invalid_date", "Must be a valid date (RFC 3339 or YYYY-MM-DD HH:MM:SS.sssZ).")
	}
	return FormatDate(t), nil
}

// autodateType: set by the records layer on create and/or update, never
// by clients.
type autodateType struct{ single }

func (autodateType) Name() string       { return FieldAutodate }
func (autodateType) Column() ColumnKind { return ColText }
func (autodateType) Options() []string  { return []string{"onCreate", "onUpdate"} }

func (autodateType) ValidateOptions(_ *Collection, f *Field, _ Lookup) *ValueError {
	if !f.OnCreate && !f.OnUpdate {
		return verr("validation_invalid_options", "An autodate field needs onCreate or onUpdate.")
	}
	return nil
}

func (autodateType) Normalize(*Field, any) (any, error) { return nil, nil }
