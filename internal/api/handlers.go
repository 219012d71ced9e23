package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/core"
	"github.com/plinthhq/plinth/internal/ratelimit"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
)

func (s *Server) listCollections(w http.ResponseWriter, r *http.Request) {
	all := s.app.Schema().All()
	out := make([]*schema.Collection, len(all))
	for i, c := range all {
		out[i] = redactCollection(c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"page": 1, "perPage": len(out), "totalItems": len(out), "totalPages": 1, "items": out})
}

// redactCollection hides OAuth2 client secrets: they can be set, never
// read back (an update that omits one keeps it).
func redactCollection(c *schema.Collection) *schema.Collection {
	if c == nil || c.Auth == nil || len(c.Auth.OAuth2.Providers) == 0 {
		return c
	}
	cp := c.Clone()
	for i := range cp.Auth.OAuth2.Providers {
		cp.Auth.OAuth2.Providers[i].ClientSecret = ""
	}
	return cp
}

func (s *Server) viewCollection(w http.ResponseWriter, r *http.Request) {
	c, err := s.collection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redactCollection(c))
}

func (s *Server) createCollection(w http.ResponseWriter, r *http.Request) {
	raw, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := core.DecodeCollection(raw, nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c.System = false
	out, err := s.app.CreateCollection(r.Context(), c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redactCollection(out))
}

func (s *Server) updateCollection(w http.ResponseWriter, r *http.Request) {
	cur, err := s.collection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	raw, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	next, err := core.DecodeCollection(raw, cur)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	next.ID = cur.ID
	out, err := s.app.UpdateCollection(r.Context(), next)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redactCollection(out))
}

func (s *Server) deleteCollection(w http.ResponseWriter, r *http.Request) {
	c := s.app.Schema().Get(r.PathValue("collection"))
	if err := s.app.DeleteCollection(r.Context(), r.PathValue("collection")); err != nil {
		s.fail(w, r, err)
		return
	}
	if c != nil && s.app.Records.Files != nil {
		s.app.Records.Files.DeletePrefix(r.Context(), c.ID+"/")
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeBody reads a create/update body: JSON, or multipart with files
// streamed to storage. On any later failure the caller runs cleanup.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, c *schema.Collection, id string) (map[string]any, *upload, error) {
	if !isMultipart(r) {
		body, err := s.decodeBody(w, r)
		return body, &upload{}, err
	}
	body, up, err := s.parseMultipart(w, r, c, id)
	if err != nil {
		up.cleanup()
	}
	return body, up, err
}

func intParam(r *http.Request, name string) (int, error) {
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

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request) {
	c, err := s.collection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	page, err := intParam(r, "page")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	perPage, err := intParam(r, "perPage")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	proj, err := records.ParseFields(q.Get("fields"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	skip, _ := strconv.ParseBool(q.Get("skipTotal"))
	caller := callerOf(r)
	var res *records.ListResult
	err = s.fresh(r, c, func(c *schema.Collection) (err error) {
		res, err = s.app.Records.List(r.Context(), caller, c, records.ListParams{
			Page: page, PerPage: perPage, Sort: q.Get("sort"), Filter: q.Get("filter"), Expand: q.Get("expand"), SkipTotal: skip,
		})
		return err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	items := make([]json.RawMessage, len(res.Items))
	for i, it := range res.Items {
		items[i] = records.Output(caller, it, proj)
	}
	writeJSON(w, http.StatusOK, struct {
		*records.ListResult
		Items []json.RawMessage `json:"items"`
	}{res, items})
}

func (s *Server) viewRecord(w http.ResponseWriter, r *http.Request) {
	c, err := s.collection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	proj, err := records.ParseFields(r.URL.Query().Get("fields"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	caller := callerOf(r)
	var rec *records.Record
	err = s.fresh(r, c, func(c *schema.Collection) (err error) {
		rec, err = s.app.Records.View(r.Context(), caller, c, r.PathValue("id"), r.URL.Query().Get("expand"))
		return err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, records.Output(caller, rec, proj))
}

// writeResult renders a written record, expanded and projected as asked.
func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, c *schema.Collection, rec *records.Record) {
	caller := callerOf(r)
	q := r.URL.Query()
	proj, err := records.ParseFields(q.Get("fields"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if e := q.Get("expand"); e != "" {
		if v, err := s.app.Records.View(r.Context(), caller, c, rec.ID(), e); err == nil {
			rec = v
		}
	}
	writeJSON(w, http.StatusOK, records.Output(caller, rec, proj))
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request) {
	c, err := s.collection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, up, err := s.writeBody(w, r, c, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var rec *records.Record
	err = s.fresh(r, c, func(c *schema.Collection) (err error) {
		rec, err = s.app.Records.Create(r.Context(), up.caller(callerOf(r)), c, body)
		return err
	})
	if err != nil {
		up.cleanup()
		s.fail(w, r, err)
		return
	}
	s.writeResult(w, r, c, rec)
}

func (s *Server) updateRecord(w http.ResponseWriter, r *http.Request) {
	c, err := s.collection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, up, err := s.writeBody(w, r, c, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var rec *records.Record
	err = s.fresh(r, c, func(c *schema.Collection) (err error) {
		rec, err = s.app.Records.Update(r.Context(), up.caller(callerOf(r)), c, r.PathValue("id"), body)
		return err
	})
	if err != nil {
		up.cleanup()
		s.fail(w, r, err)
		return
	}
	s.writeResult(w, r, c, rec)
}

func (s *Server) deleteRecord(w http.ResponseWriter, r *http.Request) {
	c, err := s.collection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	err = s.fresh(r, c, func(c *schema.Collection) error {
		return s.app.Records.Delete(r.Context(), callerOf(r), c, r.PathValue("id"))
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) authWithPassword(w http.ResponseWriter, r *http.Request) {
	c, err := s.collection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.passwordLogin(w, r, c)
}

func (s *Server) superuserAuth(w http.ResponseWriter, r *http.Request) {
	s.passwordLogin(w, r, s.app.Schema().Get(schema.SuperusersName))
}

func (s *Server) passwordLogin(w http.ResponseWriter, r *http.Request, c *schema.Collection) {
	if !c.IsAuth() {
		s.fail(w, r, apierr.NotFound("Not an auth collection."))
		return
	}
	body, err := s.decodeBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	identity, _ := body["identity"].(string)
	if identity == "" {
		identity, _ = body["email"].(string)
	}
	password, _ := body["password"].(string)
	if !s.limitAuth(w, r, c.ID+"/password", identity) {
		return
	}
	rec, err := s.app.Records.PasswordFactor(r.Context(), c, identity, password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.completeLogin(w, r, c, rec, "password", body)
}

// completeLogin applies the MFA policy and answers with a token.
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request, c *schema.Collection, rec *records.Record, method string, body map[string]any) {
	mfaID, _ := body["mfaId"].(string)
	if err := s.app.Records.SecondFactor(r.Context(), c, rec, method, mfaID); err != nil {
		s.fail(w, r, err)
		return
	}
	tok, err := s.app.Records.StartSession(r.Context(), c, rec, r.UserAgent(), ratelimit.ClientIP(r, s.opts.TrustedProxies))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rec = records.StripSecrets(rec)
	caller := &records.Caller{AuthCollection: c, Auth: rec}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "record": records.Output(caller, rec, nil)})
}

func (s *Server) requestOTP(w http.ResponseWriter, r *http.Request) {
	c, body, ok := s.authRequest(w, r)
	if !ok {
		return
	}
	email, _ := body["email"].(string)
	if !s.limitAuth(w, r, c.ID+"/otp-email", email) {
		return
	}
	id, err := s.app.Records.RequestOTP(r.Context(), c, email)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"otpId": id})
}

func (s *Server) authWithOTP(w http.ResponseWriter, r *http.Request) {
	c, body, ok := s.authRequest(w, r)
	if !ok {
		return
	}
	otpID, _ := body["otpId"].(string)
	code, _ := body["password"].(string)
	if !s.limitAuth(w, r, c.ID+"/otp-id", otpID) {
		return
	}
	rec, err := s.app.Records.AuthWithOTP(r.Context(), c, otpID, code)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.completeLogin(w, r, c, rec, "otp", body)
}

// authRequest is the prologue of the auth endpoints: an auth collection
// and a JSON body; on failure it has answered already.
func (s *Server) authRequest(w http.ResponseWriter, r *http.Request) (*schema.Collection, map[string]any, bool) {
	c, err := s.authCollection(r)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	body, err := s.decodeBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	return c, body, true
}

func (s *Server) authCollection(r *http.Request) (*schema.Collection, error) {
	c, err := s.collection(r)
	if err != nil {
		return nil, err
	}
	if !c.IsAuth() {
		return nil, apierr.NotFound("Not an auth collection.")
	}
	return c, nil
}

func (s *Server) authRefresh(w http.ResponseWriter, r *http.Request) {
	c, err := s.collection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	caller := callerOf(r)
	if caller.Auth == nil || caller.AuthCollection.ID != c.ID {
		s.fail(w, r, apierr.New(http.StatusUnauthorized, "The request requires a valid auth token of this collection."))
		return
	}
	if claims, err := secret.Peek(bearer(r)); err != nil || !claims.Refreshable {
		s.fail(w, r, apierr.Forbidden("This token cannot be refreshed."))
		return
	}
	rec, err := s.app.Records.AuthRecordWithKey(r.Context(), c, caller.Auth.ID())
	if err != nil || rec == nil {
		s.fail(w, r, apierr.New(http.StatusUnauthorized, "The request requires a valid auth token of this collection."))
		return
	}
	tok, err := s.app.Records.RefreshSession(r.Context(), c, rec, bearer(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "record": records.Output(caller, caller.Auth, nil)})
}

// impersonate lets a superuser act as a user for a short while: the token
// cannot be refreshed, and the act is logged with who did it.
func (s *Server) impersonate(w http.ResponseWriter, r *http.Request) {
	c, body, ok := s.authRequest(w, r)
	if !ok {
		return
	}
	ttl := 15 * time.Minute
	if d, ok := body["duration"].(float64); ok && d > 0 {
		ttl = min(time.Duration(d)*time.Second, time.Hour)
	}
	tok, rec, err := s.app.Records.Impersonate(r.Context(), c, r.PathValue("id"), ttl)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	su := callerOf(r).Auth
	s.log.Warn("impersonation", "superuser", su.ID(), "superuserEmail", su.String("email"), "collection", c.Name, "record", rec.ID(), "ttl", ttl.String())
	caller := &records.Caller{AuthCollection: c, Auth: rec}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "record": records.Output(caller, rec, nil)})
}

// authMethods lists how one can log in to an auth collection, with what a
// client needs to start each OAuth2 login (state and PKCE verifier it
// keeps until the provider redirects back).
func (s *Server) authMethods(w http.ResponseWriter, r *http.Request) {
	c, err := s.authCollection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	providers, err := s.app.Records.OAuth2Methods(r.Context(), c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fields := c.Auth.IdentityFields
	if len(fields) == 0 {
		fields = []string{"email"}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"password": map[string]any{"enabled": true, "identityFields": fields},
		"otp":      map[string]any{"enabled": c.Auth.OTP.Enabled},
		"mfa":      map[string]any{"enabled": c.Auth.MFA.Enabled},
		"oauth2":   map[string]any{"enabled": c.Auth.OAuth2.Enabled, "providers": providers},
	})
}

func (s *Server) authWithOAuth2(w http.ResponseWriter, r *http.Request) {
	c, body, ok := s.authRequest(w, r)
	if !ok {
		return
	}
	provider, _ := body["provider"].(string)
	if !s.limitAuth(w, r, c.ID+"/oauth2", provider) {
		return
	}
	createData, _ := body["createData"].(map[string]any)
	rec, err := s.app.Records.AuthWithOAuth2(r.Context(), callerOf(r), c, provider, str(body, "code"), str(body, "codeVerifier"), str(body, "redirectURL"), createData)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.completeLogin(w, r, c, rec, "oauth2", body)
}

func (s *Server) ownCollection(w http.ResponseWriter, r *http.Request) (*records.Caller, bool) {
	caller := callerOf(r)
	c := s.app.Schema().Get(r.PathValue("collection"))
	if c == nil || caller.Auth == nil || caller.AuthCollection.ID != c.ID {
		s.fail(w, r, apierr.New(http.StatusUnauthorized, "The request requires a valid auth token of this collection."))
		return nil, false
	}
	return caller, true
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.ownCollection(w, r)
	if !ok {
		return
	}
	list, err := s.app.Records.Sessions(r.Context(), caller, bearer(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": list})
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.ownCollection(w, r)
	if !ok {
		return
	}
	if err := s.app.Records.RevokeSession(r.Context(), caller, r.PathValue("sid")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
