package schema

import (
	"encoding/json"
	"strconv"
	"strings"
)

// FromText converts a form value (multipart/form-data text part or
// application/x-www-form-urlencoded value), which is always text, to the
// JSON value field f takes, as a PocketBase client sends them: "42" to a
// number, "true"/"on"/"1" to a bool, JSON text to a json field. Text that
// does not convert is returned as is, so validation reports it the way it
// reports a wrong JSON value.
func FromText(f *Field, s string) any {
	if f == nil {
		return s
	}
	switch f.Type {
	case FieldNumber:
		if strings.TrimSpace(s) == "" {
			return nil
		}
		if n, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return n
		}
	case FieldBool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1", "on", "yes":
			return true
		case "false", "0", "off", "no", "":
			return false
		}
	case FieldJSON:
		if strings.TrimSpace(s) == "" {
			return nil
		}
		var v any
		if json.Unmarshal([]byte(s), &v) == nil {
			return v
		}
	}
	return s
}
