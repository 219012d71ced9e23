package tests

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// oidcProvider is a small OpenID Connect provider: discovery, authorize
// (auto-approving the current user), token (client secret and PKCE
// checked, single-use codes, ID token signed with go-jose), userinfo and
// JWKS.
type oidcProvider struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	mu     sync.Mutex
	user   map[string]any
	codes  map[string]grant
	tokens map[string]map[string]any
}

type grant struct {
	challenge, redirect string
	user                map[string]any
}

func newOIDCProvider(t *testing.T) *oidcProvider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &oidcProvider{key: key, codes: map[string]grant{}, tokens: map[string]map[string]any{}}
	mux := http.NewServeMux()
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	iss := p.srv.URL
	js := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		js(w, map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
			"userinfo_endpoint": iss + "/userinfo", "jwks_uri": iss + "/jwks", "code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		js(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "plinth-client" || q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
			http.Error(w, "bad authorize request", 400)
			return
		}
		code := randomToken()
		p.mu.Lock()
		p.codes[code] = grant{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), user: p.user}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		p.mu.Lock()
		g, found := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code")) // single use
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if id != "plinth-client" || secret != "client-secret" || !found || g.redirect != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			w.WriteHeader(400)
			js(w, map[string]string{"error": "invalid_grant"})
			return
		}
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		idTok, _ := jwt.Signed(signer).Claims(jwt.Claims{Issuer: iss, Subject: g.user["sub"].(string), Audience: jwt.Audience{"plinth-client"},
			Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}).Serialize()
		at := randomToken()
		p.mu.Lock()
		p.tokens[at] = g.user
		p.mu.Unlock()
		js(w, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 3600, "id_token": idTok})
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		u := p.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		p.mu.Unlock()
		if u == nil {
			w.WriteHeader(401)
			return
		}
		js(w, u)
	})
	return p
}

func randomToken() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authorize plays the browser: follows authURL to the provider, which
// redirects back with a code.
func (p *oidcProvider) authorize(t *testing.T, authURL, redirect, state string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL + url.QueryEscape(redirect))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if loc.Query().Get("state") != state {
		t.Fatalf("state not echoed")
	}
	return loc.Query().Get("code")
}

func TestOAuth2WithOIDCProvider(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		p := newOIDCProvider(t)
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "viewRule": "id = @request.auth.id",
			"authOptions": map[string]any{"oauth2": map[string]any{"enabled": true, "providers": []any{
				map[string]any{"name": "oidc", "displayName": "Test IdP", "clientId": "plinth-client", "clientSecret": "client-secret", "issuer": p.srv.URL}}}}})
		if raw := s.do("GET", "/api/collections/users", s.su, nil).status(200).raw; strings.Contains(string(raw), "client-secret") {
			t.Errorf("client secret readable: %s", raw)
		}
		// Renaming the display name without resending the secret keeps it.
		s.do("PATCH", "/api/collections/users", s.su, map[string]any{"authOptions": map[string]any{"oauth2": map[string]any{"enabled": true, "providers": []any{
			map[string]any{"name": "oidc", "displayName": "Test IdP", "clientId": "plinth-client", "issuer": p.srv.URL}}}}}).status(200)
		login := func(user map[string]any, mutate func(body map[string]any)) *response {
			t.Helper()
			return p.login(t, s, "users", user, mutate)
		}
		ana := map[string]any{"sub": "ext-ana", "email": "Ana@Example.com", "email_verified": true, "name": "Ana"}
		first := login(ana, nil).status(200)
		rec := first.body["record"].(map[string]any)
		if rec["email"] != "ana@example.com" || rec["verified"] != true || first.str("token") == "" {
			t.Fatalf("sign-up via provider: %s", first.raw)
		}
		s.do("GET", "/api/collections/users/records/"+rec["id"].(string), first.str("token"), nil).status(200)
		// The same external identity logs into the same record.
		if again := login(ana, nil).status(200); again.body["record"].(map[string]any)["id"] != rec["id"] {
			t.Errorf("second login made a new record")
		}
		// An existing account with the provider-verified email is linked.
		bobID, _ := s.user("users", "bob@example.com", nil)
		bob := login(map[string]any{"sub": "ext-bob", "email": "bob@example.com", "email_verified": true}, nil).status(200)
		if bob.body["record"].(map[string]any)["id"] != bobID {
			t.Errorf("not linked to the existing account")
		}
		// An unverified provider email never takes over an account.
		login(map[string]any{"sub": "ext-eve", "email": "bob@example.com", "email_verified": false}, nil).status(400)
		// Wrong PKCE verifier, replayed code, unknown provider.
		login(ana, func(b map[string]any) { b["codeVerifier"] = b["codeVerifier"].(string) + "x" }).status(400)
		login(ana, func(b map[string]any) { b["provider"] = "github" }).status(400)
		var code string
		login(ana, func(b map[string]any) { code = b["code"].(string) }).status(200)
		s.do("POST", "/api/collections/users/auth-with-oauth2", "", map[string]any{"provider": "oidc", "code": code, "codeVerifier": "whatever", "redirectURL": oauthRedirect}).status(400)
	})
}

const oauthRedirect = "https://app.example.com/oauth-callback"

// oidcAuthOptions enables p as the only OAuth2 provider of a collection.
func (p *oidcProvider) authOptions() map[string]any {
	return map[string]any{"oauth2": map[string]any{"enabled": true, "providers": []any{
		map[string]any{"name": "oidc", "displayName": "Test IdP", "clientId": "plinth-client", "clientSecret": "client-secret", "issuer": p.srv.URL}}}}
}

// login runs the whole code flow for user against collection coll, as a
// browser and a client app would; mutate may change the final request.
func (p *oidcProvider) login(t *testing.T, s *server, coll string, user map[string]any, mutate func(body map[string]any)) *response {
	t.Helper()
	p.mu.Lock()
	p.user = user
	p.mu.Unlock()
	m := s.do("GET", "/api/collections/"+coll+"/auth-methods", "", nil).status(200)
	prov := m.body["oauth2"].(map[string]any)["providers"].([]any)[0].(map[string]any)
	if prov["displayName"] != "Test IdP" || prov["codeChallengeMethod"] != "S256" {
		t.Fatalf("auth method: %v", prov)
	}
	code := p.authorize(t, prov["authURL"].(string), oauthRedirect, prov["state"].(string))
	body := map[string]any{"provider": "oidc", "code": code, "codeVerifier": prov["codeVerifier"], "redirectURL": oauthRedirect}
	if mutate != nil {
		mutate(body)
	}
	return s.do("POST", "/api/collections/"+coll+"/auth-with-oauth2", "", body)
}
