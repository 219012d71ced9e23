package schema

import "strings"

// listable is embedded by types that hold a list with maxSelect > 1.
type listable struct{}

// Listable implements FieldType.
func (listable) Listable() bool { return true }

// selectType: one or more of a fixed set of values.
type selectType struct{ listable }

func (selectType) Name() string       { return FieldSelect }
func (selectType) Column() ColumnKind { return ColText }
func (selectType) Options() []string  { return []string{"values", "maxSelect"} }

func (selectType) ValidateOptions(_ *Collection, f *Field, _ Lookup) *ValueError {
	if len(f.Values) == 0 {
		return verr("validation_invalid_options", "A select field needs at least one value.")
	}
	seen := map[string]bool{}
	for _, v := range f.Values {
		if v == "" || seen[v] || len(v) > 255 {
			return verr("validation_invalid_options", "Select values must be unique, non-empty and at most 255 bytes.")
		}
		seen[v] = true
	}
	return nil
}

func (selectType) Normalize(f *Field, v any) (any, error) {
	return f.normalizeList(v, func(s string) error {
		for _, ok := range f.Values {
			if s == ok {
				return nil
			}
		}
		return verr("validation_invalid_value", "Value %q is not one of the allowed values.", s)
	})
}

// relationType: ids of records of another collection (existence is
// checked by the records layer, which sees the database).
type relationType struct{ listable }

func (relationType) Name() string       { return FieldRelation }
func (relationType) Column() ColumnKind { return ColText }
func (relationType) Options() []string  { return []string{"collectionId", "cascadeDelete", "maxSelect"} }

func (relationType) ValidateOptions(_ *Collection, f *Field, lookup Lookup) *ValueError {
	if f.CollectionID == "" {
		return verr("validation_invalid_options", "A relation field needs collectionId.")
	}
	t := lookup(f.CollectionID)
	if t == nil {
		return verr("validation_invalid_options", "Unknown relation target %q.", f.CollectionID)
	}
	if t.IsView() {
		return verr("validation_invalid_options", "Relations cannot target view collections.")
	}
	f.CollectionID = t.ID // accept a name, store the stable id
	return nil
}

func (relationType) Normalize(f *Field, v any) (any, error) {
	return f.normalizeList(v, func(s string) error {
		if !ValidRecordID(s) {
			return verr("validation_invalid_relation", "Invalid record id %q.", s)
		}
		return nil
	})
}

// fileType: names of stored files (uploads are streamed by the files
// package; which names a request may set is the records layer's check).
type fileType struct{ listable }

func (fileType) Name() string       { return FieldFile }
func (fileType) Column() ColumnKind { return ColText }
func (fileType) Options() []string {
	return []string{"maxSelect", "maxSize", "mimeTypes", "thumbs", "protected"}
}

func (fileType) ValidateOptions(_ *Collection, f *Field, _ Lookup) *ValueError {
	if f.MaxSize < 0 || f.MaxSize > 1<<40 {
		return verr("validation_invalid_options", "maxSize must be between 0 and 1 TiB.")
	}
	if len(f.Thumbs) > 16 || len(f.MimeTypes) > 64 {
		return verr("validation_invalid_options", "At most 16 thumb sizes and 64 MIME types.")
	}
	for _, t := range f.Thumbs {
		if !thumbSpecRe.MatchString(t) || t == "0x0" {
			return verr("validation_invalid_options", "Invalid thumb size %q (use WxH, WxHt, WxHb, WxHf, 0xH or Wx0, up to 2000).", t)
		}
	}
	for _, m := range f.MimeTypes {
		if !strings.Contains(m, "/") || len(m) > 127 {
			return verr("validation_invalid_options", "Invalid MIME type %q.", m)
		}
	}
	return nil
}

func (fileType) Normalize(f *Field, v any) (any, error) {
	return f.normalizeList(v, func(s string) error {
		if !validFileName(s) {
			return verr("validation_invalid_file", "Invalid file name %q.", s)
		}
		return nil
	})
}
