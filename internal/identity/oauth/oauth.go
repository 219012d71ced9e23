// Package oauth logs users in through external OAuth2 / OpenID Connect
// providers with the authorization-code flow and PKCE. A registry holds
// the well-known providers; any OpenID Connect provider can be added by
// its issuer URL.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"github.com/plinthhq/plinth/internal/schema"
)

// Config is one provider enabled on an auth collection: the stored
// schema.OAuth2Provider, with the methods that talk to it.
type Config schema.OAuth2Provider

// User is the external identity a provider reports.
type User struct {
	ID            string
	Email         string
	EmailVerified bool
	Name          string
	Username      string
	AvatarURL     string
}

// provider describes how to talk to one kind of provider.
type provider struct {
	display   string
	authURL   string
	tokenURL  string
	userURL   string
	scopes    []string
	oidc      bool // endpoints discovered from an issuer
	issuer    string
	parseUser func(ctx context.Context, c *http.Client, token string, raw map[string]any) (User, error)
}

var registry = map[string]provider{
	"google": {display: "Google", oidc: true, issuer: "https://accounts.google.com", scopes: []string{"openid", "email", "profile"}},
	"microsoft": {display: "Microsoft", oidc: true, issuer: "https://login.microsoftonline.com/common/v2.0",
		scopes: []string{"openid", "email", "profile"}},
	"gitlab": {display: "GitLab", oidc: true, issuer: "https://gitlab.com", scopes: []string{"openid", "email", "profile"}},
	"oidc":   {display: "OpenID Connect", oidc: true, scopes: []string{"openid", "email", "profile"}},
	"github": {display: "GitHub", authURL: "https://github.com/login/oauth/authorize", tokenURL: "https://github.com/login/oauth/access_token",
		userURL: "https://api.github.com/user", scopes: []string{"read:user", "user:email"}, parseUser: githubUser},
	"discord": {display: "Discord", authURL: "https://discord.com/api/oauth2/authorize", tokenURL: "https://discord.com/api/oauth2/token",
		userURL: "https://discord.com/api/users/@me", scopes: []string{"identify", "email"}, parseUser: discordUser},
}

// Known reports whether name is a supported provider.
func Known(name string) bool { _, ok := registry[name]; return ok }

// endpoints resolves the provider's URLs, discovering them for OIDC.
func (c Config) endpoints(ctx context.Context, hc *http.Client) (provider, error) {
	p := registry[c.Name]
	if c.DisplayName != "" {
		p.display = c.DisplayName
	}
	if !p.oidc {
		return p, nil
	}
	issuer := p.issuer
	if c.Issuer != "" {
		issuer = c.Issuer
	}
	var doc struct {
		Issuer   string `json:"issuer"`
		Auth     string `json:"authorization_endpoint"`
		Token    string `json:"token_endpoint"`
		UserInfo string `json:"userinfo_endpoint"`
	}
	if err := getJSON(ctx, hc, strings.TrimRight(issuer, "/")+"/.well-known/openid-configuration", "", &doc); err != nil {
		return p, fmt.Errorf("oidc discovery: %w", err)
	}
	if strings.TrimRight(doc.Issuer, "/") != strings.TrimRight(issuer, "/") && c.Name == "oidc" {
		return p, errors.New("oidc discovery: issuer mismatch")
	}
	p.authURL, p.tokenURL, p.userURL = doc.Auth, doc.Token, doc.UserInfo
	p.parseUser = oidcUser
	return p, nil
}

func getJSON(ctx context.Context, hc *http.Client, url, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// Method is what a client needs to start a login with one provider.
type Method struct {
	Name                string `json:"name"`
	DisplayName         string `json:"displayName"`
	State               string `json:"state"`
	AuthURL             string `json:"authURL"` // append the redirect_uri
	CodeVerifier        string `json:"codeVerifier"`
	CodeChallenge       string `json:"codeChallenge"`
	CodeChallengeMethod string `json:"codeChallengeMethod"`
}

// Start prepares a login: a fresh state and PKCE verifier the client keeps
// and sends back with the code.
func (c Config) Start(ctx context.Context, hc *http.Client) (Method, error) {
	p, err := c.endpoints(ctx, hc)
	if err != nil {
		return Method{}, err
	}
	verifier := oauth2.GenerateVerifier()
	state := randomString(24)
	oc := c.oauthConfig(p, "")
	u := oc.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	sum := sha256.Sum256([]byte(verifier))
	return Method{Name: c.Name, DisplayName: p.display, State: state, AuthURL: u + "&redirect_uri=", CodeVerifier: verifier,
		CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), CodeChallengeMethod: "S256"}, nil
}

func (c Config) oauthConfig(p provider, redirect string) *oauth2.Config {
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: redirect, Scopes: p.scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.authURL, TokenURL: p.tokenURL}}
}

// Exchange trades the code for tokens (proving the PKCE verifier) and
// reads the user from the provider.
func (c Config) Exchange(ctx context.Context, hc *http.Client, code, verifier, redirect string) (User, error) {
	p, err := c.endpoints(ctx, hc)
	if err != nil {
		return User{}, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	tok, err := c.oauthConfig(p, redirect).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return User{}, fmt.Errorf("code exchange: %w", err)
	}
	var raw map[string]any
	if err := getJSON(ctx, hc, p.userURL, tok.AccessToken, &raw); err != nil {
		return User{}, fmt.Errorf("user info: %w", err)
	}
	u, err := p.parseUser(ctx, hc, tok.AccessToken, raw)
	if err != nil {
		return User{}, err
	}
	if u.ID == "" {
		return User{}, errors.New("the provider did not identify the user")
	}
	u.Email = strings.ToLower(u.Email)
	return u, nil
}

func str(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprintf("%.0f", v)
	}
	return ""
}

func oidcUser(_ context.Context, _ *http.Client, _ string, m map[string]any) (User, error) {
	verified, _ := m["email_verified"].(bool)
	return User{ID: str(m, "sub"), Email: str(m, "email"), EmailVerified: verified, Name: str(m, "name"), Username: str(m, "preferred_username")}, nil
}

func githubUser(ctx context.Context, hc *http.Client, token string, m map[string]any) (User, error) {
	u := User{ID: str(m, "id"), Name: str(m, "name"), Username: str(m, "login")}
	// /user shows only a public email, and says nothing of verification;
	// the primary verified address comes from /user/emails.
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := getJSON(ctx, hc, "https://api.github.com/user/emails", token, &emails); err == nil {
		for _, e := range emails {
			if e.Primary && e.Verified {
				u.Email, u.EmailVerified = e.Email, true
			}
		}
	}
	if u.Email == "" {
		u.Email = str(m, "email")
	}
	return u, nil
}

func discordUser(_ context.Context, _ *http.Client, _ string, m map[string]any) (User, error) {
	verified, _ := m["verified"].(bool)
	return User{ID: str(m, "id"), Email: str(m, "email"), EmailVerified: verified, Username: str(m, "username"), Name: str(m, "global_name")}, nil
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
