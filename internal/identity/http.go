package identity

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/ratelimit"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/web"
)

// Handlers serve the authentication endpoints of auth collections.
type Handlers struct {
	Identity *Service
	Schema   records.SchemaSource
	// PerIP and PerAccount limit authentication attempts (nil: no limit).
	PerIP, PerAccount *ratelimit.Limiter
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
}

// limit applies the authentication rate limits for an attempt on an
// account: identity within scope (a collection and a flow). The account
// key is the identity in its canonical form, the one lookups use, so no
// spelling of it (spaces, case, lookalikes) earns a fresh allowance.
func (h *Handlers) limit(w http.ResponseWriter, r *http.Request, scope, identity string) error {
	now := time.Now()
	for _, l := range []struct {
		lim *ratelimit.Limiter
		key string
	}{{h.PerIP, "ip:" + ratelimit.ClientIP(r, h.TrustedProxies)}, {h.PerAccount, "acct:" + scope + "/" + schema.NormalizeIdentity(identity)}} {
		if l.lim == nil {
			continue
		}
		if ok, wait := l.lim.Allow(l.key, now); !ok {
			w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
			return apierr.New(http.StatusTooManyRequests, "Too many attempts; try again later.")
		}
	}
	return nil
}

// authCollection resolves the request's {collection}, which must be an
// auth collection.
func (h *Handlers) authCollection(r *http.Request) (*schema.Collection, error) {
	c, err := records.Collection(r.Context(), h.Schema, r.PathValue("collection"))
	if err != nil {
		return nil, err
	}
	if !c.IsAuth() {
		return nil, apierr.NotFound("Not an auth collection.")
	}
	return c, nil
}

// authRequest is the prologue of the auth endpoints: an auth collection
// and a JSON body.
func (h *Handlers) authRequest(r *http.Request) (*schema.Collection, map[string]any, error) {
	c, err := h.authCollection(r)
	if err != nil {
		return nil, nil, err
	}
	body, err := web.DecodeObject(r)
	if err != nil {
		return nil, nil, err
	}
	return c, body, nil
}

// AuthWithPassword answers POST .../auth-with-password.
func (h *Handlers) AuthWithPassword(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authCollection(r)
	if err != nil {
		return err
	}
	return h.passwordLogin(w, r, c)
}

// SuperuserAuth answers POST /api/superusers/auth-with-password.
func (h *Handlers) SuperuserAuth(w http.ResponseWriter, r *http.Request) error {
	return h.passwordLogin(w, r, h.Identity.Schema().Get(schema.SuperusersName))
}

func (h *Handlers) passwordLogin(w http.ResponseWriter, r *http.Request, c *schema.Collection) error {
	body, err := web.DecodeObject(r)
	if err != nil {
		return err
	}
	identity := web.Str(body, "identity")
	if identity == "" {
		identity = web.Str(body, "email")
	}
	if err := h.limit(w, r, c.ID+"/password", identity); err != nil {
		return err
	}
	rec, err := h.Identity.PasswordFactor(r.Context(), c, identity, web.Str(body, "password"))
	if err != nil {
		return err
	}
	return h.completeLogin(w, r, c, rec, "password", body)
}

// completeLogin applies the MFA policy and answers with a token.
func (h *Handlers) completeLogin(w http.ResponseWriter, r *http.Request, c *schema.Collection, rec *records.Record, method string, body map[string]any) error {
	if err := h.Identity.SecondFactor(r.Context(), c, rec, method, web.Str(body, "mfaId")); err != nil {
		return err
	}
	tok, err := h.Identity.StartSession(r.Context(), c, rec, r.UserAgent(), ratelimit.ClientIP(r, h.TrustedProxies))
	if err != nil {
		return err
	}
	return h.tokenResponse(w, c, records.StripSecrets(rec), tok)
}

// tokenResponse is the answer of every login: the token and the record
// as its owner sees it.
func (h *Handlers) tokenResponse(w http.ResponseWriter, c *schema.Collection, rec *records.Record, tok string) error {
	caller := &records.Caller{AuthCollection: c, Auth: rec}
	return web.JSON(w, http.StatusOK, map[string]any{"token": tok, "record": records.Output(caller, rec, nil)})
}

// RequestOTP answers POST .../request-otp.
func (h *Handlers) RequestOTP(w http.ResponseWriter, r *http.Request) error {
	c, body, err := h.authRequest(r)
	if err != nil {
		return err
	}
	email := web.Str(body, "email")
	if err := h.limit(w, r, c.ID+"/otp-email", email); err != nil {
		return err
	}
	id, err := h.Identity.RequestOTP(r.Context(), c, email)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, map[string]string{"otpId": id})
}

// AuthWithOTP answers POST .../auth-with-otp.
func (h *Handlers) AuthWithOTP(w http.ResponseWriter, r *http.Request) error {
	c, body, err := h.authRequest(r)
	if err != nil {
		return err
	}
	otpID := web.Str(body, "otpId")
	if err := h.limit(w, r, c.ID+"/otp-id", otpID); err != nil {
		return err
	}
	rec, err := h.Identity.AuthWithOTP(r.Context(), c, otpID, web.Str(body, "password"))
	if err != nil {
		return err
	}
	return h.completeLogin(w, r, c, rec, "otp", body)
}

// AuthRefresh answers POST .../auth-refresh: a fresh token for a valid,
// refreshable one of the same session.
func (h *Handlers) AuthRefresh(w http.ResponseWriter, r *http.Request) error {
	c, err := records.Collection(r.Context(), h.Schema, r.PathValue("collection"))
	if err != nil {
		return err
	}
	caller := records.CallerFrom(r)
	if caller.Auth == nil || caller.AuthCollection.ID != c.ID {
		return errNeedsToken()
	}
	if claims, err := secret.Peek(web.Bearer(r)); err != nil || !claims.Refreshable {
		return apierr.Forbidden("This token cannot be refreshed.")
	}
	rec, err := h.Identity.AuthRecordWithKey(r.Context(), c, caller.Auth.ID())
	if err != nil {
		return err
	}
	if rec == nil {
		return errNeedsToken()
	}
	tok, err := h.Identity.RefreshSession(r.Context(), c, rec, web.Bearer(r))
	if err != nil {
		return err
	}
	return h.tokenResponse(w, c, caller.Auth, tok)
}

func errNeedsToken() error {
	return apierr.New(http.StatusUnauthorized, "The request requires a valid auth token of this collection.")
}

// Impersonate answers POST .../impersonate/{id} (superusers): a short-lived
// token that cannot be refreshed; the act is logged with who did it.
func (h *Handlers) Impersonate(w http.ResponseWriter, r *http.Request) error {
	c, body, err := h.authRequest(r)
	if err != nil {
		return err
	}
	ttl := 15 * time.Minute
	if d, ok := body["duration"].(float64); ok && d > 0 {
		ttl = min(time.Duration(d)*time.Second, time.Hour)
	}
	tok, rec, err := h.Identity.Impersonate(r.Context(), c, r.PathValue("id"), ttl)
	if err != nil {
		return err
	}
	su := records.CallerFrom(r).Auth
	h.Identity.logWarn("impersonation", "superuser", su.ID(), "superuserEmail", su.String("email"), "collection", c.Name, "record", rec.ID(), "ttl", ttl.String())
	return h.tokenResponse(w, c, rec, tok)
}

// AuthMethods answers GET .../auth-methods: how one can log in, with what
// a client needs to start each OAuth2 login (state and PKCE verifier it
// keeps until the provider redirects back).
func (h *Handlers) AuthMethods(w http.ResponseWriter, r *http.Request) error {
	c, err := h.authCollection(r)
	if err != nil {
		return err
	}
	providers, err := h.Identity.OAuth2Methods(r.Context(), c)
	if err != nil {
		return err
	}
	fields := c.Auth.IdentityFields
	if len(fields) == 0 {
		fields = []string{"email"}
	}
	return web.JSON(w, http.StatusOK, map[string]any{
		"password": map[string]any{"enabled": true, "identityFields": fields},
		"otp":      map[string]any{"enabled": c.Auth.OTP.Enabled, "duration": int64(duration(c.Auth.OTP.Duration, 300).Seconds())},
		"mfa":      map[string]any{"enabled": c.Auth.MFA.Enabled, "duration": int64(duration(c.Auth.MFA.Duration, 600).Seconds())},
		"oauth2":   map[string]any{"enabled": c.Auth.OAuth2.Enabled, "providers": providers},
	})
}

// AuthWithOAuth2 answers POST .../auth-with-oauth2.
func (h *Handlers) AuthWithOAuth2(w http.ResponseWriter, r *http.Request) error {
	c, body, err := h.authRequest(r)
	if err != nil {
		return err
	}
	provider := web.Str(body, "provider")
	if err := h.limit(w, r, c.ID+"/oauth2", provider); err != nil {
		return err
	}
	createData, _ := body["createData"].(map[string]any)
	rec, err := h.Identity.AuthWithOAuth2(r.Context(), records.CallerFrom(r), c, provider, web.Str(body, "code"), web.Str(body, "codeVerifier"), web.Str(body, "redirectURL"), createData)
	if err != nil {
		return err
	}
	return h.completeLogin(w, r, c, rec, "oauth2", body)
}

// ownCollection is the caller when signed in to the request's collection.
func (h *Handlers) ownCollection(r *http.Request) (*records.Caller, *schema.Collection, error) {
	caller := records.CallerFrom(r)
	c, err := h.Schema.Collection(r.Context(), r.PathValue("collection"))
	if err != nil {
		return nil, nil, err
	}
	if c == nil || caller.Auth == nil || caller.AuthCollection.ID != c.ID {
		return nil, nil, errNeedsToken()
	}
	return caller, c, nil
}

// ListSessions answers GET .../sessions: the caller's signed-in devices.
func (h *Handlers) ListSessions(w http.ResponseWriter, r *http.Request) error {
	caller, _, err := h.ownCollection(r)
	if err != nil {
		return err
	}
	list, err := h.Identity.Sessions(r.Context(), caller, web.Bearer(r))
	if err != nil {
		return err
	}
	// Paged like every list (PocketBase clients fetch "all pages" until
	// a short one).
	page, perPage, skipTotal, err := web.PageParams(r)
	if err != nil {
		return err
	}
	if list == nil {
		list = []Session{}
	}
	total := len(list)
	from, to := min((page-1)*perPage, len(list)), min(page*perPage, len(list))
	if skipTotal {
		total = -1
	}
	return web.Page(w, page, perPage, total, list[from:to])
}

// RevokeSession answers DELETE .../sessions/{sid}.
func (h *Handlers) RevokeSession(w http.ResponseWriter, r *http.Request) error {
	caller, _, err := h.ownCollection(r)
	if err != nil {
		return err
	}
	if err := h.Identity.RevokeSession(r.Context(), caller, r.PathValue("sid")); err != nil {
		return err
	}
	return web.NoContent(w)
}

// LogoutAll answers POST .../logout-all: every token and session of the
// caller ends.
func (h *Handlers) LogoutAll(w http.ResponseWriter, r *http.Request) error {
	caller, c, err := h.ownCollection(r)
	if err != nil {
		return err
	}
	if err := h.Identity.RotateTokenKey(r.Context(), c, caller.Auth.ID()); err != nil {
		return err
	}
	return web.NoContent(w)
}

// flow is an email-flow endpoint: limited on limitKey's value, answering
// 204 whatever the outcome it may not reveal.
func (h *Handlers) flow(limitKey string, fn func(ctx context.Context, r *http.Request, c *schema.Collection, body map[string]any) error) web.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, body, err := h.authRequest(r)
		if err != nil {
			return err
		}
		if err := h.limit(w, r, c.ID+"/"+limitKey, web.Str(body, limitKey)); err != nil {
			return err
		}
		if err := fn(r.Context(), r, c, body); err != nil {
			return err
		}
		return web.NoContent(w)
	}
}

// RequestVerification answers POST .../request-verification.
func (h *Handlers) RequestVerification() web.Handler {
	return h.flow("email", func(ctx context.Context, _ *http.Request, c *schema.Collection, b map[string]any) error {
		return h.Identity.RequestVerification(ctx, c, web.Str(b, "email"))
	})
}

// ConfirmVerification answers POST .../confirm-verification.
func (h *Handlers) ConfirmVerification() web.Handler {
	return h.flow("token", func(ctx context.Context, _ *http.Request, c *schema.Collection, b map[string]any) error {
		return h.Identity.ConfirmVerification(ctx, c, web.Str(b, "token"))
	})
}

// RequestPasswordReset answers POST .../request-password-reset.
func (h *Handlers) RequestPasswordReset() web.Handler {
	return h.flow("email", func(ctx context.Context, _ *http.Request, c *schema.Collection, b map[string]any) error {
		return h.Identity.RequestPasswordReset(ctx, c, web.Str(b, "email"))
	})
}

// ConfirmPasswordReset answers POST .../confirm-password-reset.
func (h *Handlers) ConfirmPasswordReset() web.Handler {
	return h.flow("token", func(ctx context.Context, _ *http.Request, c *schema.Collection, b map[string]any) error {
		return h.Identity.ConfirmPasswordReset(ctx, c, web.Str(b, "token"), web.Str(b, "password"), web.Str(b, "passwordConfirm"))
	})
}

// RequestEmailChange answers POST .../request-email-change (signed in).
func (h *Handlers) RequestEmailChange() web.Handler {
	return h.flow("newEmail", func(ctx context.Context, r *http.Request, c *schema.Collection, b map[string]any) error {
		return h.Identity.RequestEmailChange(ctx, records.CallerFrom(r), c, web.Str(b, "newEmail"))
	})
}

// ConfirmEmailChange answers POST .../confirm-email-change.
func (h *Handlers) ConfirmEmailChange() web.Handler {
	return h.flow("token", func(ctx context.Context, _ *http.Request, c *schema.Collection, b map[string]any) error {
		return h.Identity.ConfirmEmailChange(ctx, c, web.Str(b, "token"), web.Str(b, "password"))
	})
}

// FileToken answers POST /api/files/token: a short-lived token for
// reading protected files.
func (h *Handlers) FileToken(w http.ResponseWriter, r *http.Request) error {
	caller := records.CallerFrom(r)
	if caller.Auth == nil {
		return apierr.New(http.StatusUnauthorized, "The request requires a valid auth token.")
	}
	tok, err := h.Identity.IssueFileToken(r.Context(), caller)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, map[string]string{"token": tok})
}
