package schema

import (
	"regexp"
	"unicode/utf8"
)

// textType: plain text with optional length bounds (in characters) and
// pattern; the auth password field is text hashed by the records layer.
type textType struct{ single }

func (textType) Name() string       { return FieldText }
func (textType) Column() ColumnKind { return ColText }
func (textType) Options() []string  { return []string{"min", "max", "pattern"} }

func (textType) ValidateOptions(_ *Collection, f *Field, _ Lookup) *ValueError {
	if e := minMax(f); e != nil {
		return e
	}
	if f.Pattern != "" {
		if len(f.Pattern) > 512 {
			return verr("validation_invalid_options", "pattern is too long.")
		}
		if _, err := regexp.Compile(f.Pattern); err != nil {
			return verr("validation_invalid_pattern", "Invalid pattern: %v.", err)
		}
	}
	return nil
}

func (textType) Normalize(f *Field, v any) (any, error) { return normalizeText(f, v, 5000) }

// normalizeText checks a text value against f's bounds (defaultMax
// characters unless max is set) and pattern.
func normalizeText(f *Field, v any, defaultMax float64) (any, error) {
	s, err := asString(v)
	if err != nil {
		return nil, err
	}
	if s == "" {
		return blank(f, "")
	}
	n := utf8.RuneCountInString(s)
	if f.Min != nil && float64(n) < *f.Min {
		return nil, verr("validation_min_text_constraint", "Must be at least %v character(s).", *f.Min)
	}
	max := defaultMax
	if f.Max != nil && *f.Max > 0 {
		max = *f.Max
	}
	if float64(n) > max {
		return nil, verr("validation_max_text_constraint", "Must be less than %v character(s).", max)
	}
	if re := f.Regexp(); re != nil && !re.MatchString(s) {
		return nil, verr("validation_invalid_format", "Invalid value format.")
	}
	return s, nil
}

// passwordType: the auth collections' password, given as text (at most
// 256 characters) and stored hashed by the records layer.
type passwordType struct{ single }

func (passwordType) Name() string       { return FieldPassword }
func (passwordType) Column() ColumnKind { return ColText }
func (passwordType) Options() []string  { return []string{"min", "max"} }

func (passwordType) ValidateOptions(c *Collection, f *Field, _ Lookup) *ValueError {
	if c.Type != TypeAuth || f.Name != "password" {
		return verr("validation_invalid_type", "Only the auth system field may be a password.")
	}
	return minMax(f)
}

func (passwordType) Normalize(f *Field, v any) (any, error) { return normalizeText(f, v, 256) }
