// Package web is the small toolkit every feature's HTTP handlers share:
// the handler signature (errors are returned, and turned into responses
// in one place, the server's error edge), JSON in and out, and request
// parameters. It knows no feature.
package web

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/schema"
)

// Handler serves a request and reports failure as an error; the server
// writes the error response (status, JSON shape, logging) for it.
type Handler func(w http.ResponseWriter, r *http.Request) error

// JSON writes v as the JSON response with status.
func JSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if raw, ok := v.(json.RawMessage); ok {
		_, err := w.Write(raw)
		return ignoreWriteErr(err)
	}
	return ignoreWriteErr(json.NewEncoder(w).Encode(v))
}

// ignoreWriteErr drops errors of writing a response: the client left, and
// there is nobody to tell.
func ignoreWriteErr(error) error { return nil }

// NoContent answers 204.
func NoContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ReadJSON reads a JSON request body (the server has already bounded its
// size). A body cut short is the client's mistake: a 400.
func ReadJSON(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, apierr.New(http.StatusUnsupportedMediaType, "Content-Type must be application/json.")
	}
	return readAll(r)
}

// readAll reads the (server-bounded) request body; a body cut short is a
// 400, one over the limit keeps its own error.
func readAll(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	var ae *apierr.Error
	switch {
	case err == nil:
		return raw, nil
	case errors.As(err, &ae), errors.As(err, &mbe):
		return nil, err
	}
	e := apierr.BadRequest("The request body could not be read completely.")
	e.Cause = err
	return nil, e
}

// DecodeObject reads a JSON object body; an empty body is an empty object.
// Every string in it (and every key) must be storable text. An
// application/x-www-form-urlencoded body (HTML forms, PocketBase clients)
// is accepted too: each value is text, a repeated key a list of texts
// (see schema.FromText for typing them).
func DecodeObject(r *http.Request) (map[string]any, error) {
	if IsForm(r) {
		return decodeForm(r)
	}
	raw, err := ReadJSON(r)
	if err != nil {
		return nil, err
	}
	body := map[string]any{}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return body, nil
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, apierr.BadRequest("Invalid JSON body: expected an object.")
	}
	for k, v := range body {
		if !validTextTree(k) || !validTextTree(v) {
			return nil, apierr.BadRequest("Invalid JSON body: text may not contain NUL characters.").
				With(k, "validation_invalid_text", "Must be valid UTF-8 text without NUL characters.")
		}
	}
	return body, nil
}

// validTextTree reports whether every string in a decoded JSON value (and
// every object key) is storable text; see schema.ValidText.
func validTextTree(v any) bool {
	switch x := v.(type) {
	case string:
		return schema.ValidText(x)
	case []any:
		for _, e := range x {
			if !validTextTree(e) {
				return false
			}
		}
	case map[string]any:
		for k, e := range x {
			if !schema.ValidText(k) || !validTextTree(e) {
				return false
			}
		}
	}
	return true
}

// IsForm reports whether the request carries an
// application/x-www-form-urlencoded body.
func IsForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

// decodeForm reads an urlencoded body into the shape DecodeObject gives.
func decodeForm(r *http.Request) (map[string]any, error) {
	raw, err := readAll(r)
	if err != nil {
		return nil, err
	}
	vals, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, apierr.BadRequest("Invalid form body.")
	}
	body := make(map[string]any, len(vals))
	for k, list := range vals {
		if len(list) == 1 {
			body[k] = list[0]
		} else {
			l := make([]any, len(list))
			for i, v := range list {
				l[i] = v
			}
			body[k] = l
		}
		if !validTextTree(k) || !validTextTree(body[k]) {
			return nil, apierr.BadRequest("Invalid form body: text may not contain NUL characters.").
				With(k, "validation_invalid_text", "Must be valid UTF-8 text without NUL characters.")
		}
	}
	return body, nil
}

// IsMultipart reports whether the request carries multipart/form-data.
func IsMultipart(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}

// Bearer returns the request's token ("Bearer " prefix optional).
func Bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	tok, _ := strings.CutPrefix(h, "Bearer ")
	return strings.TrimSpace(tok)
}

// IntParam reads a non-negative integer query parameter (0 when absent).
func IntParam(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, apierr.BadRequest("Invalid "+name+" parameter.").With(name, "validation_invalid_"+name, "Must be a non-negative integer.")
	}
	return n, nil
}

// Str returns body[k] when it is a string.
func Str(body map[string]any, k string) string { v, _ := body[k].(string); return v }

// Paging limits shared by every list endpoint.
const (
	DefaultPerPage = 30
	MaxPerPage     = 500
)

// PageParams reads page (from 1), perPage (1..MaxPerPage, default
// DefaultPerPage) and skipTotal, the paging parameters of every list.
func PageParams(r *http.Request) (page, perPage int, skipTotal bool, err error) {
	if page, err = IntParam(r, "page"); err != nil {
		return
	}
	if perPage, err = IntParam(r, "perPage"); err != nil {
		return
	}
	page, perPage = max(page, 1), min(max(perPage, 0), MaxPerPage)
	if perPage == 0 {
		perPage = DefaultPerPage
	}
	skipTotal, _ = strconv.ParseBool(r.URL.Query().Get("skipTotal"))
	return
}

// Page writes one page of a list in the shape every list endpoint shares;
// total < 0 means not counted (skipTotal).
func Page(w http.ResponseWriter, page, perPage, total int, items any) error {
	pages := -1
	if total >= 0 {
		pages = (total + perPage - 1) / perPage
	}
	return JSON(w, http.StatusOK, map[string]any{"page": page, "perPage": perPage, "totalItems": total, "totalPages": pages, "items": items})
}
