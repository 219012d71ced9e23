package records

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/web"
)

// DefaultBatchMax is how many requests one batch may carry by default.
const DefaultBatchMax = 50

// batchRequest is one request of POST /api/batch, as PocketBase's SDKs
// send it.
type batchRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Body    map[string]any    `json:"body"`
	Headers map[string]string `json:"headers"`
}

// batchResult is one answer of a committed batch.
type batchResult struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
	expand func(ctx context.Context) json.RawMessage
}

// Batch answers POST /api/batch: {"requests": [{method, url, body}]},
// each a record create (POST .../records), upsert (PUT .../records, by
// the body's id), update (PATCH .../records/{id}) or delete (DELETE
// .../records/{id}), run in order in one transaction. Each is checked as
// if sent alone (its collection's rules, hooks, validation, with its own
// method, query and body visible to rules); the first failure rolls all
// back and answers 400 naming it, with its own error. Realtime events and
// hooks after changes see the batch only once it committed.
func (h *Handlers) Batch(w http.ResponseWriter, r *http.Request) error {
	var raw []byte
	var req struct {
		Requests []batchRequest `json:"requests"`
	}
	var staged []stagedFile
	if web.IsMultipart(r) {
		// PocketBase's SDKs send batches as multipart: the requests in
		// @jsonPayload (last), files as "requests.N.field" parts before it.
		payload, files, err := readBatchMultipart(r)
		defer removeStaged(files)
		if err != nil {
			return err
		}
		raw, staged = payload, files
	} else {
		var err error
		if raw, err = web.ReadJSON(r); err != nil {
			return err
		}
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return apierr.BadRequest("Invalid JSON body: expected {\"requests\": [...]}.")
	}
	max := h.BatchMax
	if max <= 0 {
		max = DefaultBatchMax
	}
	if len(req.Requests) == 0 {
		return apierr.BadRequest("Invalid batch.").With("requests", "validation_required", "At least one request is needed.")
	}
	if len(req.Requests) > max {
		return apierr.BadRequest("Invalid batch.").With("requests", "validation_size", "At most "+strconv.Itoa(max)+" requests per batch.")
	}
	caller := CallerFrom(r)
	up := files.NewUpload(h.Files)
	uploaded, err := h.storeStaged(r.Context(), req.Requests, staged, up)
	if err != nil {
		up.Cleanup()
		return err
	}
	results := make([]batchResult, len(req.Requests))
	failed := -1
	var failure error
	err = h.Records.InBatch(r.Context(), func(ctx context.Context) error {
		for i, br := range req.Requests {
			res, err := h.batchOne(ctx, caller, br, uploaded[i])
			if err != nil {
				failed, failure = i, err
				return err
			}
			results[i] = res
		}
		return nil
	})
	if err != nil {
		up.Cleanup()
	}
	if failed < 0 {
		if err != nil {
			return err // the commit itself failed
		}
		for i := range results {
			if results[i].expand != nil {
				results[i].Body = results[i].expand(r.Context())
			}
		}
		return web.JSON(w, http.StatusOK, results)
	}
	ae := apierr.From(failure)
	if ae.Status >= 500 {
		return failure
	}
	return web.JSON(w, http.StatusBadRequest, map[string]any{
		"status":  http.StatusBadRequest,
		"message": "Batch transaction failed: request " + strconv.Itoa(failed) + " was refused; nothing was applied.",
		"data": map[string]any{"requests": map[string]any{strconv.Itoa(failed): map[string]any{
			"code": "batch_request_failed", "message": ae.Message,
			"response": ae,
		}}},
	})
}

// batchOne runs one request of a batch inside its transaction.
func (h *Handlers) batchOne(ctx context.Context, caller *Caller, br batchRequest, uploaded map[string]bool) (batchResult, error) {
	u, err := url.Parse(br.URL)
	if err != nil || !strings.HasPrefix(u.Path, "/api/collections/") {
		return batchResult{}, apierr.BadRequest("Only record requests (/api/collections/{collection}/records...) can be batched.")
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/api/collections/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[1] != "records" {
		return batchResult{}, apierr.BadRequest("Only record requests (/api/collections/{collection}/records...) can be batched.")
	}
	c, err := Collection(ctx, h.Schema, parts[0])
	if err != nil {
		return batchResult{}, err
	}
	id := ""
	if len(parts) == 3 {
		id = parts[2]
	}
	method := strings.ToUpper(br.Method)
	body := br.Body
	if body == nil {
		body = map[string]any{}
	}
	for k, v := range body {
		if !validTextTree(k, v) {
			return batchResult{}, apierr.BadRequest("Invalid body: text may not contain NUL characters.").With(k, "validation_invalid_text", "Must be valid UTF-8 text without NUL characters.")
		}
	}
	// Rules see this request's own method and query; the identity and
	// headers are the batch request's.
	sub := &Caller{AuthCollection: caller.AuthCollection, Auth: caller.Auth, Method: method, Query: u.Query(), Headers: caller.Headers, Uploaded: uploaded}
	ctx = WithCaller(ctx, sub)
	var rec *Record
	switch {
	case method == http.MethodPost && id == "":
		rec, err = h.Records.Create(ctx, sub, c, body)
	case method == http.MethodPut && id == "":
		rid, _ := body["id"].(string)
		existing := false
		if rid != "" {
			existing, err = h.Records.existsForUpsert(ctx, c, rid)
			if err != nil {
				return batchResult{}, err
			}
		}
		if existing {
			sub.Method = http.MethodPatch
			rec, err = h.Records.Update(ctx, sub, c, rid, body)
		} else {
			sub.Method = http.MethodPost
			rec, err = h.Records.Create(ctx, sub, c, body)
		}
	case method == http.MethodPatch && id != "":
		rec, err = h.Records.Update(ctx, sub, c, id, body)
	case method == http.MethodDelete && id != "":
		if err := h.Records.Delete(ctx, sub, c, id); err != nil {
			return batchResult{}, err
		}
		return batchResult{Status: http.StatusNoContent, Body: json.RawMessage("null")}, nil
	default:
		return batchResult{}, apierr.BadRequest("Unsupported batch request " + method + " " + u.Path + " (POST/PUT on .../records, PATCH/DELETE on .../records/{id}).")
	}
	if err != nil {
		return batchResult{}, err
	}
	proj, err := ParseFields(u.Query().Get("fields"))
	if err != nil {
		return batchResult{}, err
	}
	res := batchResult{Status: http.StatusOK, Body: Output(sub, rec, proj)}
	if e := u.Query().Get("expand"); e != "" {
		// Expanded after the commit: expansion reads what others may read.
		res.expand = func(ctx context.Context) json.RawMessage {
			if v, err := h.Records.View(ctx, sub, c, rec.ID(), e); err == nil {
				return Output(sub, v, proj)
			}
			return res.Body
		}
	}
	return res, nil
}

// validTextTree reports whether a key and its decoded JSON value hold
// only storable text (see schema.ValidText).
func validTextTree(k string, v any) bool {
	if !schema.ValidText(k) {
		return false
	}
	switch x := v.(type) {
	case string:
		return schema.ValidText(x)
	case []any:
		for _, e := range x {
			if !validTextTree("", e) {
				return false
			}
		}
	case map[string]any:
		for k2, e := range x {
			if !validTextTree(k2, e) {
				return false
			}
		}
	}
	return true
}

// stagedFile is a file part of a multipart batch, kept in a temporary
// file until the requests (which come after it) say where it belongs.
type stagedFile struct {
	request       int
	field         string // as sent: "avatar" or "avatar+"
	name, tmpPath string
}

// maxBatchFiles bounds the file parts of one batch.
const maxBatchFiles = 100

// readBatchMultipart reads a multipart batch: the @jsonPayload text and
// the file parts, staged on disk (the body size is bounded by the
// server's upload limit).
func readBatchMultipart(r *http.Request) ([]byte, []stagedFile, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, apierr.BadRequest("Invalid multipart body.")
	}
	var payload []byte
	var staged []stagedFile
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, staged, apierr.BadRequest("Invalid or truncated multipart body.")
		}
		name := part.FormName()
		if name == "@jsonPayload" && part.FileName() == "" {
			if payload, err = io.ReadAll(io.LimitReader(part, 16<<20)); err != nil {
				return nil, staged, apierr.BadRequest("Invalid or truncated multipart body.")
			}
			continue
		}
		rest, ok := strings.CutPrefix(name, "requests.")
		idx, field, ok2 := strings.Cut(rest, ".")
		n, err := strconv.Atoi(idx)
		if !ok || !ok2 || err != nil || n < 0 || part.FileName() == "" || field == "" {
			return nil, staged, apierr.BadRequest("Invalid batch part " + strconv.Quote(name) + `: expected @jsonPayload or files named "requests.N.field".`)
		}
		if len(staged) >= maxBatchFiles {
			return nil, staged, apierr.BadRequest("Too many files in one batch.")
		}
		tmp, err := os.CreateTemp("", "plinth-batch-*")
		if err != nil {
			return nil, staged, apierr.Internal(err)
		}
		staged = append(staged, stagedFile{request: n, field: field, name: part.FileName(), tmpPath: tmp.Name()})
		_, err = io.Copy(tmp, part)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, staged, err
			}
			return nil, staged, apierr.BadRequest("Invalid or truncated multipart body.")
		}
	}
	if payload == nil {
		return nil, staged, apierr.BadRequest("Invalid batch: the @jsonPayload part is missing.")
	}
	return payload, staged, nil
}

func removeStaged(staged []stagedFile) {
	for _, f := range staged {
		os.Remove(f.tmpPath)
	}
}

// storeStaged stores the staged files of each request under the record
// it writes and sets the request's file fields to them (replace, or
// append for "field+"), as a multipart request of its own would; it
// returns the names each request uploaded.
func (h *Handlers) storeStaged(ctx context.Context, reqs []batchRequest, staged []stagedFile, up *files.Upload) ([]map[string]bool, error) {
	uploaded := make([]map[string]bool, len(reqs))
	for _, sf := range staged {
		if sf.request >= len(reqs) {
			return nil, apierr.BadRequest("A batch file names request " + strconv.Itoa(sf.request) + ", which does not exist.")
		}
		br := &reqs[sf.request]
		u, err := url.Parse(br.URL)
		if err != nil {
			return nil, apierr.BadRequest("Invalid batch request URL.")
		}
		parts := strings.Split(strings.TrimPrefix(u.Path, "/api/collections/"), "/")
		if len(parts) < 2 {
			return nil, apierr.BadRequest("Files can only go with record requests.")
		}
		c, err := Collection(ctx, h.Schema, parts[0])
		if err != nil {
			return nil, err
		}
		if br.Body == nil {
			br.Body = map[string]any{}
		}
		id := ""
		if len(parts) == 3 {
			id = parts[2]
		} else if s, _ := br.Body["id"].(string); s != "" {
			id = s
		} else {
			id = schema.NewID()
			br.Body["id"] = id
		}
		fh, err := os.Open(sf.tmpPath)
		if err != nil {
			return nil, apierr.Internal(err)
		}
		base, isAppend := strings.CutSuffix(sf.field, "+")
		stored, err := files.StoreFile(ctx, h.Files, c, id, base, sf.name, fh, up)
		fh.Close()
		if err != nil {
			return nil, err
		}
		if uploaded[sf.request] == nil {
			uploaded[sf.request] = map[string]bool{}
		}
		uploaded[sf.request][stored] = true
		key := base
		if isAppend {
			key = base + "+"
		}
		f := c.Field(base)
		switch prev := br.Body[key].(type) {
		case []any:
			br.Body[key] = append(prev, stored)
		default:
			if f.Multi() || isAppend {
				br.Body[key] = []any{stored}
			} else {
				br.Body[key] = stored
			}
		}
	}
	return uploaded, nil
}
