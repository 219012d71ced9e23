package schema

import (
	"bytes"
	"encoding/json"
)

// jsonType: any JSON document up to maxSize bytes.
type jsonType struct{ single }

func (jsonType) Name() string       { return FieldJSON }
func (jsonType) Column() ColumnKind { return ColJSON }
func (jsonType) Options() []string  { return []string{"maxSize"} }

func (jsonType) ValidateOptions(_ *Collection, f *Field, _ Lookup) *ValueError {
	if f.MaxSize < 0 {
		return verr("validation_invalid_options", "maxSize must be positive.")
	}
	return nil
}

func (jsonType) Normalize(f *Field, v any) (any, error) {
	if v == nil {
		return blank(f, nil)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, verr("validation_invalid_json", "Must be valid JSON.")
	}
	if bytes.Contains(b, []byte(`\u0000`)) {
		// PostgreSQL's jsonb cannot hold a NUL character.
		return nil, errInvalidText()
	}
	max := int(f.MaxSize)
	if max <= 0 {
		max = DefaultJSONMaxSize
	}
	if len(b) > max {
		return nil, verr("validation_json_size_limit", "Must be at most %d bytes of JSON.", max)
	}
	if f.Required && (string(b) == `""` || string(b) == "[]" || string(b) == "{}") {
		return nil, ErrRequired
	}
	return string(b), nil
}
