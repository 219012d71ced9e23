package plinth

import (
	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
)

// The domain types an embedding program works with.
type (
	// Record is one record of a collection: its values by field name
	// (string, float64, bool, []string for multi-valued fields,
	// json.RawMessage for JSON) and expanded relations.
	Record = records.Record
	// Collection is a collection's definition: type, fields, rules,
	// indexes and auth options.
	Collection = schema.Collection
	// Field is one field of a collection.
	Field = schema.Field
	// Caller is who makes a request and what the request carries, as
	// access rules see it (@request.*); the zero Caller is anonymous.
	Caller = records.Caller
	// Change is a committed record change (create, update or delete).
	Change = records.Change
	// Error is a client-facing error: an HTTP status, a message and
	// per-field errors ({"status", "message", "data"}).
	Error = apierr.Error
	// FieldError is one entry of Error.Data.
	FieldError = apierr.FieldError
)

// Change actions.
const (
	ActionCreate = records.ActionCreate
	ActionUpdate = records.ActionUpdate
	ActionDelete = records.ActionDelete
)
