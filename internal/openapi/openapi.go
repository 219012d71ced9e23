// Package openapi describes the API a caller can use as an OpenAPI 3.1
// document built from the live schema, so clients and code generators
// follow collection changes without a hand-written spec going stale.
package openapi

import (
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/web"
)

// Options says which optional features the server runs, since their
// endpoints exist only when they are enabled.
type Options struct {
	Realtime bool
	Webhooks bool
}

// obj is a JSON object under construction.
type obj = map[string]any

// Handler serves the document for the calling user: the schema is read
// per request so the document always matches the collections in force.
func Handler(snap func() *schema.Snapshot, o Options) web.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		doc := Build(snap().All(), records.CallerFrom(r).Superuser(), o)
		w.Header().Set("Cache-Control", "no-store")
		return web.JSON(w, http.StatusOK, doc)
	}
}

// Visible reports whether a collection is described to a non-superuser:
// a collection whose list and view rules are both null is superusers-only,
// so describing it would only leak its shape.
func Visible(c *schema.Collection) bool {
	return c.ListRule != nil || c.ViewRule != nil
}

// componentName matches the names OpenAPI allows for components.
var componentName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// RecordSchemaName is the component name of a collection's record schema.
func RecordSchemaName(c *schema.Collection) string {
	return componentName.ReplaceAllString(c.Name, "_") + "Record"
}

func inputSchemaName(c *schema.Collection) string {
	return componentName.ReplaceAllString(c.Name, "_") + "Input"
}

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func jsonBody(schemaObj obj) obj {
	return obj{"required": true, "content": obj{"application/json": obj{"schema": schemaObj}}}
}

func jsonResp(desc string, schemaObj obj) obj {
	return obj{"description": desc, "content": obj{"application/json": obj{"schema": schemaObj}}}
}

// withErrors is an operation's responses: ok for 200 and the given error
// statuses (default 400, 403, 404), all in the one error shape.
func withErrors(ok obj, codes ...string) obj {
	out := obj{"200": ok}
	if len(codes) == 0 {
		codes = []string{"400", "403", "404"}
	}
	for _, c := range codes {
		out[c] = obj{"$ref": "#/components/responses/Error"}
	}
	return out
}

func noContent() obj { return obj{"description": "Done; no body."} }

// noContentResponses are the answers of an operation that succeeds with
// 204 and no body.
func noContentResponses(codes ...string) obj {
	r := withErrors(noContent(), codes...)
	r["204"] = r["200"]
	delete(r, "200")
	return r
}

// builder accumulates the document's paths and component schemas.
type builder struct {
	su      bool
	paths   obj
	schemas obj
}

func (b *builder) op(path, method string, o obj) {
	p, _ := b.paths[path].(obj)
	if p == nil {
		p = obj{}
		b.paths[path] = p
	}
	p[method] = o
}

// Build returns the OpenAPI 3.1 document for the given collections as a
// superuser (su) or any other caller sees them.
func Build(cols []*schema.Collection, su bool, o Options) obj {
	b := &builder{su: su, paths: obj{}, schemas: obj{
		"Error": obj{"type": "object", "required": []any{"status", "message", "data"}, "properties": obj{
			"status":  obj{"type": "integer"},
			"message": obj{"type": "string"},
			"data": obj{"type": "object", "additionalProperties": obj{"type": "object", "properties": obj{
				"code": obj{"type": "string"}, "message": obj{"type": "string"}}}},
		}},
	}}
	sorted := append([]*schema.Collection(nil), cols...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var shown []*schema.Collection
	for _, c := range sorted {
		if su || Visible(c) {
			shown = append(shown, c)
		}
	}
	for _, c := range shown {
		b.collection(c)
	}
	b.common(o)
	if su {
		b.superuser(o)
	}
	tags := []any{}
	for _, c := range shown {
		tags = append(tags, obj{"name": c.Name, "description": "Records of the " + c.Type + " collection " + c.Name + "."})
	}
	return obj{
		"openapi": "3.1.0",
		"info": obj{"title": "Plinth API", "version": "1",
			"description": "Generated from the live schema for the calling user."},
		"servers": []any{obj{"url": "/"}},
		"tags":    tags,
		"paths":   b.paths,
		"components": obj{
			"schemas":   b.schemas,
			"responses": obj{"Error": jsonResp("An error in the standard shape.", ref("Error"))},
			"securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer",
				"description": "An auth token from an auth-with-* endpoint, sent as `Authorization: Bearer <token>` (the bare token is accepted too)."}},
		},
		"security": []any{obj{}, obj{"bearer": []any{}}},
	}
}

// fieldSchema maps a field to its JSON Schema by type.
func fieldSchema(f *schema.Field) obj {
	many := f.MaxSelect > 1
	var s obj
	switch f.Type {
	case schema.FieldText:
		s = obj{"type": "string"}
		if f.Pattern != "" {
			s["pattern"] = f.Pattern
		}
	case schema.FieldNumber:
		s = obj{"type": "number"}
		if f.OnlyInt {
			s = obj{"type": "integer"}
		}
	case schema.FieldBool:
		s = obj{"type": "boolean"}
	case schema.FieldEmail:
		s = obj{"type": "string", "format": "email"}
	case schema.FieldURL:
		s = obj{"type": "string", "format": "uri"}
	case schema.FieldDate, schema.FieldAutodate:
		s = obj{"type": "string", "description": "A date-time such as \"2024-01-02 15:04:05.000Z\", or empty."}
	case schema.FieldSelect:
		vals := make([]any, 0, len(f.Values)+1)
		for _, v := range f.Values {
			vals = append(vals, v)
		}
		if !many {
			vals = append(vals, "") // an unset single select reads as ""
		}
		s = obj{"type": "string", "enum": vals}
	case schema.FieldJSON:
		s = obj{}
	case schema.FieldRelation:
		s = obj{"type": "string", "description": "Id of a record in the related collection."}
	case schema.FieldFile:
		s = obj{"type": "string", "description": "A stored file name; download it from /api/files/{collection}/{record}/{filename}."}
	default:
		s = obj{}
	}
	if many {
		s = obj{"type": "array", "items": s}
	}
	return s
}

// skipField reports fields never described to the caller: secrets for
// everyone, hidden fields for all but superusers.
func (b *builder) skipField(f *schema.Field) bool {
	return f.Type == schema.FieldPassword || f.Name == "tokenKey" || (f.Hidden && !b.su)
}

func (b *builder) recordSchemas(c *schema.Collection) {
	props := obj{
		"id":             obj{"type": "string"},
		"collectionId":   obj{"type": "string", "const": c.ID},
		"collectionName": obj{"type": "string", "const": c.Name},
		"expand":         obj{"type": "object", "description": "Expanded relations, when ?expand= asks for them."},
	}
	in := obj{}
	var inRequired []any
	for _, f := range c.Fields {
		if b.skipField(f) {
			continue
		}
		props[f.Name] = fieldSchema(f)
		if f.Type == schema.FieldAutodate || f.Name == "id" {
			continue
		}
		in[f.Name] = fieldSchema(f)
		if f.Required && f.Type != schema.FieldBool && !(c.IsAuth() && (f.Name == "email" || f.Name == "verified")) {
			inRequired = append(inRequired, f.Name)
		}
	}
	in["id"] = obj{"type": "string", "description": "Optional id to create the record with."}
	if c.IsAuth() {
		in["password"] = obj{"type": "string", "writeOnly": true}
		in["passwordConfirm"] = obj{"type": "string", "writeOnly": true}
		in["oldPassword"] = obj{"type": "string", "writeOnly": true, "description": "Needed to change the password of one's own record."}
	}
	b.schemas[RecordSchemaName(c)] = obj{"type": "object", "required": []any{"id", "collectionId", "collectionName"},
		"properties": props, "description": "A record of " + c.Name + " as returned by the API."}
	input := obj{"type": "object", "properties": in,
		"description": "Fields of a record of " + c.Name + " to create or update; files are sent as multipart/form-data."}
	b.schemas[inputSchemaName(c)] = input
	if len(inRequired) > 0 {
		b.schemas[inputSchemaName(c)+"Create"] = obj{"allOf": []any{ref(inputSchemaName(c)), obj{"required": inRequired}}}
	} else {
		b.schemas[inputSchemaName(c)+"Create"] = ref(inputSchemaName(c))
	}
}

func pathParam(name, desc string) obj {
	return obj{"name": name, "in": "path", "required": true, "schema": obj{"type": "string"}, "description": desc}
}

func queryParam(name, typ, desc string) obj {
	return obj{"name": name, "in": "query", "schema": obj{"type": typ}, "description": desc}
}

// listSchema is a page of records.
func listSchema(item obj) obj {
	return obj{"type": "object", "required": []any{"page", "perPage", "totalItems", "totalPages", "items"},
		"properties": obj{
			"page":       obj{"type": "integer"},
			"perPage":    obj{"type": "integer"},
			"totalItems": obj{"type": "integer", "description": "-1 when ?skipTotal=true."},
			"totalPages": obj{"type": "integer", "description": "-1 when ?skipTotal=true."},
			"items":      obj{"type": "array", "items": item},
		}}
}

func (b *builder) collection(c *schema.Collection) {
	b.recordSchemas(c)
	base := "/api/collections/" + c.Name
	tag := []any{c.Name}
	rec := ref(RecordSchemaName(c))
	idp := pathParam("id", "Record id.")
	readParams := []any{queryParam("expand", "string", "Relations to expand, comma-separated (a.b for nested)."),
		queryParam("fields", "string", "Fields to return, comma-separated; the record schema's required properties hold only without it.")}
	allowed := func(rule *string) bool { return b.su || rule != nil }
	if allowed(c.ListRule) {
		params := append([]any{
			queryParam("page", "integer", "Page number, from 1."),
			queryParam("perPage", "integer", "Records per page."),
			queryParam("sort", "string", "Sort fields, comma-separated; - for descending."),
			queryParam("filter", "string", "Filter expression, as in rules."),
			queryParam("skipTotal", "boolean", "Skip counting; totalItems and totalPages are -1."),
		}, readParams...)
		b.op(base+"/records", "get", obj{"tags": tag, "summary": "List " + c.Name + " records",
			"operationId": "list_" + c.Name, "parameters": params,
			"responses": withErrors(jsonResp("A page of records.", listSchema(rec)), "400", "403")})
	}
	if c.Type != schema.TypeView {
		if allowed(c.CreateRule) {
			b.op(base+"/records", "post", obj{"tags": tag, "summary": "Create a " + c.Name + " record",
				"operationId": "create_" + c.Name, "parameters": readParams,
				"requestBody": recordBody(ref(inputSchemaName(c) + "Create")),
				"responses":   withErrors(jsonResp("The created record.", rec))})
		}
	}
	if allowed(c.ViewRule) {
		b.op(base+"/records/{id}", "get", obj{"tags": tag, "summary": "View a " + c.Name + " record",
			"operationId": "view_" + c.Name, "parameters": append([]any{idp}, readParams...),
			"responses": withErrors(jsonResp("The record.", rec), "403", "404")})
	}
	if c.Type != schema.TypeView {
		if allowed(c.UpdateRule) {
			b.op(base+"/records/{id}", "patch", obj{"tags": tag, "summary": "Update a " + c.Name + " record",
				"operationId": "update_" + c.Name, "parameters": append([]any{idp}, readParams...),
				"requestBody": recordBody(ref(inputSchemaName(c))),
				"responses":   withErrors(jsonResp("The updated record.", rec))})
		}
		if allowed(c.DeleteRule) {
			b.op(base+"/records/{id}", "delete", obj{"tags": tag, "summary": "Delete a " + c.Name + " record",
				"operationId": "delete_" + c.Name, "parameters": []any{idp},
				"responses": noContentResponses("400", "403", "404")})
		}
	}
	if c.IsAuth() {
		b.auth(c, base, tag, rec)
	}
}

// recordBody accepts JSON or multipart (for files).
func recordBody(s obj) obj {
	return obj{"required": true, "content": obj{
		"application/json":    obj{"schema": s},
		"multipart/form-data": obj{"schema": obj{"type": "object", "description": "Fields as form values; files as parts; a JSON document in @jsonPayload."}},
	}}
}

// auth adds the endpoints of an auth collection.
func (b *builder) auth(c *schema.Collection, base string, tag []any, rec obj) {
	authResp := jsonResp("A token and the authenticated record.", obj{"type": "object", "required": []any{"token", "record"},
		"properties": obj{"token": obj{"type": "string"}, "record": rec, "meta": obj{"type": "object"}}})
	str := func(names ...string) obj {
		props := obj{}
		req := []any{}
		for _, n := range names {
			props[n] = obj{"type": "string"}
			req = append(req, n)
		}
		return obj{"type": "object", "required": req, "properties": props}
	}
	post := func(name, summary string, body obj, ok obj, codes ...string) {
		o := obj{"tags": tag, "summary": summary, "operationId": strings.ReplaceAll(name, "-", "_") + "_" + c.Name}
		if body != nil {
			o["requestBody"] = jsonBody(body)
		}
		if ok == nil {
			o["responses"] = noContentResponses(codes...)
		} else {
			o["responses"] = withErrors(ok, codes...)
		}
		b.op(base+"/"+name, "post", o)
	}
	post("auth-with-password", "Sign in with an identity (email) and password",
		str("identity", "password"), authResp, "400")
	post("auth-refresh", "Exchange a valid token for a fresh one", nil, authResp, "401", "403", "404")
	b.op(base+"/auth-methods", "get", obj{"tags": tag, "summary": "Sign-in methods this collection allows",
		"operationId": "auth_methods_" + c.Name,
		"responses":   withErrors(jsonResp("The enabled methods.", obj{"type": "object"}), "404")})
	post("request-otp", "Email a one-time password", str("email"), jsonResp("The OTP id.", str("otpId")), "400")
	post("auth-with-otp", "Sign in with a one-time password", str("otpId", "password"), authResp, "400")
	post("auth-with-oauth2", "Sign in with an OAuth2 provider", str("provider", "code", "codeVerifier", "redirectURL"), authResp, "400")
	post("request-verification", "Email a verification link", str("email"), nil, "400")
	post("confirm-verification", "Confirm an email address", str("token"), nil, "400")
	post("request-password-reset", "Email a password reset link", str("email"), nil, "400")
	post("confirm-password-reset", "Set a new password with a reset token", str("token", "password", "passwordConfirm"), nil, "400")
	post("request-email-change", "Email a link to change the email address", str("newEmail"), nil, "400", "401")
	post("confirm-email-change", "Confirm a new email address", str("token", "password"), nil, "400")
	post("logout-all", "Invalidate every token of the caller", nil, nil, "401")
	b.op(base+"/sessions", "get", obj{"tags": tag, "summary": "The caller's sessions", "operationId": "sessions_" + c.Name,
		"responses": withErrors(jsonResp("Sessions.", obj{"type": "array", "items": obj{"type": "object"}}), "401")})
	b.op(base+"/sessions/{sid}", "delete", obj{"tags": tag, "summary": "Revoke one session", "operationId": "revoke_session_" + c.Name,
		"parameters": []any{pathParam("sid", "Session id.")},
		"responses":  noContentResponses("401", "404")})
	if b.su {
		b.op(base+"/impersonate/{id}", "post", obj{"tags": tag, "summary": "Issue a token for a record (superusers)",
			"operationId": "impersonate_" + c.Name, "parameters": []any{pathParam("id", "Record id.")},
			"responses": withErrors(authResp, "403", "404")})
	}
}

// common adds the endpoints everyone may call.
func (b *builder) common(o Options) {
	b.op("/api/health", "get", obj{"summary": "Health check", "operationId": "health", "tags": []any{"system"},
		"responses": withErrors(jsonResp("Healthy.", obj{"type": "object", "properties": obj{
			"code": obj{"type": "integer"}, "message": obj{"type": "string"}}}), "503")})
	b.op("/api/openapi.json", "get", obj{"summary": "This document, for the caller", "operationId": "openapi", "tags": []any{"system"},
		"responses": obj{"200": jsonResp("An OpenAPI 3.1 document.", obj{"type": "object"})}})
	b.op("/api/files/{collection}/{record}/{filename}", "get", obj{"summary": "Download a file", "operationId": "file",
		"tags": []any{"files"},
		"parameters": []any{pathParam("collection", "Collection id or name."), pathParam("record", "Record id."),
			pathParam("filename", "Stored file name."),
			queryParam("thumb", "string", "A thumbnail size the field allows, e.g. 100x100."),
			queryParam("token", "string", "A file token, for protected files."),
			queryParam("download", "boolean", "Ask the browser to save the file.")},
		"responses": obj{"200": obj{"description": "The file.", "content": obj{"application/octet-stream": obj{
			"schema": obj{"type": "string", "contentMediaType": "application/octet-stream"}}}},
			"404": obj{"$ref": "#/components/responses/Error"}}})
	b.op("/api/files/token", "post", obj{"summary": "Get a short-lived token for protected files", "operationId": "file_token",
		"tags": []any{"files"}, "responses": withErrors(jsonResp("A file token.", obj{"type": "object", "properties": obj{
			"token": obj{"type": "string"}}}), "401")})
	b.op("/api/batch", "post", obj{"summary": "Run record writes in one transaction", "operationId": "batch",
		"tags": []any{"system"}, "requestBody": jsonBody(obj{"type": "object", "required": []any{"requests"}, "properties": obj{
			"requests": obj{"type": "array", "items": obj{"type": "object", "required": []any{"method", "url"}, "properties": obj{
				"method": obj{"type": "string"}, "url": obj{"type": "string"}, "headers": obj{"type": "object"}, "body": obj{}}}}}}),
		"responses": withErrors(jsonResp("The answer to each request.", obj{"type": "array", "items": obj{"type": "object",
			"properties": obj{"status": obj{"type": "integer"}, "body": obj{}}}}), "400", "403")})
	b.op("/api/superusers/auth-with-password", "post", obj{"summary": "Sign in as a superuser", "operationId": "superuser_auth",
		"tags": []any{"system"}, "requestBody": jsonBody(obj{"type": "object", "required": []any{"identity", "password"},
			"properties": obj{"identity": obj{"type": "string"}, "password": obj{"type": "string"}}}),
		"responses": withErrors(jsonResp("A superuser token.", obj{"type": "object", "properties": obj{
			"token": obj{"type": "string"}, "record": obj{"type": "object"}}}), "400")})
	if o.Realtime {
		b.op("/api/realtime", "get", obj{"summary": "Open a realtime stream (server-sent events)", "operationId": "realtime_connect",
			"tags": []any{"realtime"}, "description": "The first event, PB_CONNECT, carries the clientId to subscribe with.",
			"responses": obj{"200": obj{"description": "An event stream.", "content": obj{"text/event-stream": obj{"schema": obj{"type": "string"}}}}}})
		b.op("/api/realtime", "post", obj{"summary": "Set a realtime client's subscriptions", "operationId": "realtime_subscribe",
			"tags": []any{"realtime"}, "requestBody": jsonBody(obj{"type": "object", "required": []any{"clientId"}, "properties": obj{
				"clientId":      obj{"type": "string"},
				"subscriptions": obj{"type": "array", "items": obj{"type": "string"}, "description": "\"collection/*\" or \"collection/recordId\", with optional ?options= query."}}}),
			"responses": noContentResponses("400", "403", "404")})
	}
}

// superuser adds the endpoints only superusers may call.
func (b *builder) superuser(o Options) {
	tag := []any{"superusers"}
	anyObj := obj{"type": "object"}
	simple := func(path, method, id, summary string, body bool, params ...any) {
		op := obj{"tags": tag, "summary": summary, "operationId": id,
			"responses": withErrors(jsonResp("The result.", anyObj), "400", "403", "404")}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if body {
			op["requestBody"] = jsonBody(anyObj)
		}
		if method == "delete" {
			op["responses"] = noContentResponses("400", "403", "404")
		}
		b.op(path, method, op)
	}
	cp := pathParam("collection", "Collection id or name.")
	simple("/api/collections", "get", "collections_list", "List collections", false)
	simple("/api/collections", "post", "collections_create", "Create a collection", true)
	simple("/api/collections/validate", "post", "collections_validate", "Validate a collection without saving it", true)
	simple("/api/collections/import", "put", "collections_import", "Import collections", true)
	simple("/api/collections/{collection}", "get", "collections_view", "View a collection", false, cp)
	simple("/api/collections/{collection}", "patch", "collections_update", "Update a collection", true, cp)
	simple("/api/collections/{collection}", "delete", "collections_delete", "Delete a collection", false, cp)
	simple("/api/settings", "get", "settings_view", "View settings", false)
	simple("/api/settings", "patch", "settings_update", "Update settings", true)
	simple("/api/settings/test/email", "post", "settings_test_email", "Send a test email", true)
	simple("/api/settings/email/preview", "post", "settings_email_preview", "Render an email template", true)
	if o.Webhooks {
		wp := pathParam("id", "Webhook id.")
		simple("/api/webhooks", "get", "webhooks_list", "List webhooks", false)
		simple("/api/webhooks", "post", "webhooks_create", "Create a webhook", true)
		simple("/api/webhooks/{id}", "get", "webhooks_view", "View a webhook", false, wp)
		simple("/api/webhooks/{id}", "patch", "webhooks_update", "Update a webhook", true, wp)
		simple("/api/webhooks/{id}", "delete", "webhooks_delete", "Delete a webhook", false, wp)
		simple("/api/webhooks/{id}/deliveries", "get", "webhooks_deliveries", "List a webhook's deliveries", false, wp)
		simple("/api/webhooks/{id}/deliveries/{delivery}/retry", "post", "webhooks_retry", "Retry a delivery", false, wp,
			pathParam("delivery", "Delivery id."))
	}
}
