package schema

import (
	"slices"
	"strings"
)

// FieldType is the behaviour of one field type. Adding a type is one
// value implementing it, in a file of its own (field_<name>.go), and one
// line in fieldTypes: how its values are stored (Column), validated and
// normalised (Normalize), which options it takes and how they are
// checked when a collection is saved.
type FieldType interface {
	// Name is the type's name in collection definitions ("text").
	Name() string
	// Column is the storage class of a single value; a listable field
	// with maxSelect > 1 is stored as ColArray whatever its type.
	Column() ColumnKind
	// Listable reports whether maxSelect may make the field hold a list.
	Listable() bool
	// Options are the type-specific options the type accepts, by their
	// JSON names; any other option set on such a field is refused.
	Options() []string
	// ValidateOptions checks the type's options when a collection is
	// saved (lookup finds other collections, for relations).
	ValidateOptions(c *Collection, f *Field, lookup Lookup) *ValueError
	// Normalize validates a client value and returns the value to store.
	Normalize(f *Field, v any) (any, error)
}

// fieldTypes is the registry of field types.
var fieldTypes = []FieldType{textType{}, numberType{}, boolType{}, emailType{}, urlType{}, dateType{},
	selectType{}, jsonType{}, relationType{}, autodateType{}, passwordType{}, fileType{}}

// FieldTypes lists every field type's name, for validation and
// documentation.
var FieldTypes = func() []string {
	names := make([]string, len(fieldTypes))
	for i, t := range fieldTypes {
		names[i] = t.Name()
	}
	return names
}()

var fieldTypeByName = func() map[string]FieldType {
	m := make(map[string]FieldType, len(fieldTypes))
	for _, t := range fieldTypes {
		m[t.Name()] = t
	}
	return m
}()

// typeOf returns the field type named name (nil when unknown).
func typeOf(name string) FieldType { return fieldTypeByName[name] }

// setOptions lists the type-specific options set on f, by JSON name.
func setOptions(f *Field) []string {
	var set []string
	add := func(name string, isSet bool) {
		if isSet {
			set = append(set, name)
		}
	}
	add("min", f.Min != nil)
	add("max", f.Max != nil)
	add("pattern", f.Pattern != "")
	add("onlyInt", f.OnlyInt)
	add("values", len(f.Values) > 0)
	add("maxSelect", f.MaxSelect > 1)
	add("maxSize", f.MaxSize != 0)
	add("mimeTypes", len(f.MimeTypes) > 0)
	add("thumbs", len(f.Thumbs) > 0)
	add("protected", f.Protected)
	add("collectionId", f.CollectionID != "")
	add("cascadeDelete", f.CascadeDelete)
	add("onCreate", f.OnCreate)
	add("onUpdate", f.OnUpdate)
	return set
}

// checkOptions refuses options the field's type does not take.
func checkOptions(t FieldType, f *Field) *ValueError {
	for _, o := range setOptions(f) {
		if !slices.Contains(t.Options(), o) {
			return verr("validation_invalid_options", "%s does not apply to %s fields (they take: %s).", o, t.Name(), optionList(t))
		}
	}
	return nil
}

func optionList(t FieldType) string {
	if len(t.Options()) == 0 {
		return "no options"
	}
	return strings.Join(t.Options(), ", ")
}

// minMax checks min ≤ max where both are set.
func minMax(f *Field) *ValueError {
	if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
		return verr("validation_invalid_options", "min must not exceed max.")
	}
	return nil
}

// blank answers an empty value: ErrRequired for a required field, else
// the type's empty stored value.
func blank(f *Field, empty any) (any, error) {
	if f.Required {
		return nil, ErrRequired
	}
	return empty, nil
}

// noOptions is embedded by types without options of their own.
type noOptions struct{}

// Options implements FieldType.
func (noOptions) Options() []string { return nil }

// ValidateOptions implements FieldType.
func (noOptions) ValidateOptions(*Collection, *Field, Lookup) *ValueError { return nil }

// single is embedded by types that hold one value.
type single struct{}

// Listable implements FieldType.
func (single) Listable() bool { return false }
