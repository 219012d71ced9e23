// Package apierr is the error shape every endpoint returns:
// {"status":400,"message":"...","data":{"field":{"code":"...","message":"..."}}}.
// Internal causes are kept for logs and never serialised.
package apierr

import (
	"errors"
	"net/http"
)

// FieldError is one entry of Error.Data.
type FieldError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is a client-facing error.
type Error struct {
	Status  int                   `json:"status"`
	Message string                `json:"message"`
	Data    map[string]FieldError `json:"data"`
	// MFAID is set on the 401 that asks for a second factor.
	MFAID string `json:"mfaId,omitempty"`
	// Cause is logged, never sent.
	Cause error `json:"-"`
}

// Error implements error; it includes the internal cause, for logs.
func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

// Unwrap exposes the internal cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Cause }

// New builds an Error with an empty data object.
func New(status int, msg string) *Error {
	return &Error{Status: status, Message: msg, Data: map[string]FieldError{}}
}

// With adds a field error and returns e.
func (e *Error) With(field, code, msg string) *Error {
	e.Data[field] = FieldError{Code: code, Message: msg}
	return e
}

// BadRequest is a 400 with the given message.
func BadRequest(msg string) *Error { return New(http.StatusBadRequest, msg) }

// Forbidden is a 403.
func Forbidden(msg string) *Error { return New(http.StatusForbidden, msg) }

// NotFound is a 404.
func NotFound(msg string) *Error { return New(http.StatusNotFound, msg) }

// Coder is an error that knows its client-facing form (validation
// errors of the domain packages implement it), so this package needs to
// know none of them.
type Coder interface {
	APIError() *Error
}

// Internal wraps an unexpected failure; the client sees only a generic 500.
func Internal(cause error) *Error {
	e := New(http.StatusInternalServerError, "Something went wrong while processing your request.")
	e.Cause = cause
	return e
}

// From converts any error into an *Error, treating unknown ones as 500.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var c Coder
	if errors.As(err, &c) {
		return c.APIError()
	}
	return Internal(err)
}
