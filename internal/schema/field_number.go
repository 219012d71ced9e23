package schema

import (
	"encoding/json"
	"math"
)

// numberType: a finite float64, optionally whole, within bounds.
type numberType struct{ single }

func (numberType) Name() string       { return FieldNumber }
func (numberType) Column() ColumnKind { return ColNumber }
func (numberType) Options() []string  { return []string{"min", "max", "onlyInt"} }

func (numberType) ValidateOptions(_ *Collection, f *Field, _ Lookup) *ValueError { return minMax(f) }

func (numberType) Normalize(f *Field, v any) (any, error) {
	var n float64
	switch x := v.(type) {
	case nil:
	case float64:
		n = x
	case json.Number:
		var err error
		if n, err = x.Float64(); err != nil {
			return nil, verr("validation_invalid_number", "Must be a number.")
		}
	default:
		return nil, verr("validation_invalid_number", "Must be a number.")
	}
	if math.IsNaN(n) || math.IsInf(n, 0) {
		return nil, verr("validation_invalid_number", "Must be a finite number.")
	}
	if n == 0 && f.Required {
		return nil, ErrRequired
	}
	if f.OnlyInt && n != math.Trunc(n) {
		return nil, verr("validation_only_int_constraint", "Must be an integer.")
	}
	if f.Min != nil && n < *f.Min {
		return nil, verr("validation_min_number_constraint", "Must be larger than %v.", *f.Min)
	}
	if f.Max != nil && n > *f.Max {
		return nil, verr("validation_max_number_constraint", "Must be less than %v.", *f.Max)
	}
	return n, nil
}

// boolType: true or false; required means true.
type boolType struct {
	single
	noOptions
}

func (boolType) Name() string       { return FieldBool }
func (boolType) Column() ColumnKind { return ColBool }

func (boolType) Normalize(f *Field, v any) (any, error) {
	var b bool
	switch x := v.(type) {
	case nil:
	case bool:
		b = x
	default:
		return nil, verr("validation_invalid_bool", "Must be a boolean.")
	}
	if !b && f.Required {
		return nil, ErrRequired
	}
	return b, nil
}
