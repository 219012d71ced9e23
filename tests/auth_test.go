package tests

import (
	"strings"
	"testing"

	"github.com/plinthhq/plinth"
)

func TestPasswordAuthAndTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": "", "updateRule": "id = @request.auth.id",
			"fields": []any{map[string]any{"name": "name", "type": "text"}}})
		s.collection(map[string]any{"name": "members", "type": "auth", "listRule": "", "viewRule": "", "createRule": ""})
		anaID, anaTok := s.user("users", "Ana@Example.com", map[string]any{"name": "Ana"})
		bobID, bobTok := s.user("users", "bob@example.com", map[string]any{"name": "Bob", "emailVisibility": true})

		// Unknown identity and wrong password look the same.
		wrong := s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "nope-nope"}).status(400)
		unknown := s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "zed@example.com", "password": "nope-nope"}).status(400)
		if string(wrong.raw) != string(unknown.raw) {
			t.Errorf("responses differ: %s vs %s", wrong.raw, unknown.raw)
		}
		s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "", "password": ""}).status(400)
		// A user token is not a superuser token, nor valid for another collection.
		s.do("GET", "/api/collections", anaTok, nil).status(403)
		s.do("POST", "/api/collections/members/auth-refresh", anaTok, nil).status(401)
		// Users cannot log in as superusers.
		s.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "password123"}).status(400)

		// Email visibility: own record and superusers, or when made visible.
		if got := s.do("GET", "/api/collections/users/records/"+anaID, anaTok, nil).status(200).body["email"]; got != "ana@example.com" {
			t.Errorf("own email: %v", got)
		}
		if _, ok := s.do("GET", "/api/collections/users/records/"+anaID, bobTok, nil).status(200).body["email"]; ok {
			t.Errorf("email leaked to another user")
		}
		if _, ok := s.do("GET", "/api/collections/users/records/"+anaID, "", nil).status(200).body["email"]; ok {
			t.Errorf("email leaked to anonymous")
		}
		if got := s.do("GET", "/api/collections/users/records/"+bobID, anaTok, nil).status(200).body["email"]; got != "bob@example.com" {
			t.Errorf("visible email hidden: %v", got)
		}
		for _, rec := range s.do("GET", "/api/collections/users/records", "", nil).status(200).items() {
			if _, ok := rec["password"]; ok {
				t.Fatalf("password hash in output")
			}
			if _, ok := rec["tokenKey"]; ok {
				t.Fatalf("token key in output")
			}
		}

		// Refresh issues a working token.
		ref := s.do("POST", "/api/collections/users/auth-refresh", anaTok, nil).status(200)
		newTok := ref.str("token")
		if newTok == "" || ref.body["record"].(map[string]any)["id"] != anaID {
			t.Fatalf("refresh: %s", ref.raw)
		}
		s.do("GET", "/api/collections/users/records/"+anaID, newTok, nil).status(200)

		// Tampered token.
		parts := strings.Split(anaTok, ".")
		s.do("GET", "/api/collections/users/records", parts[0]+"."+parts[1]+".AAAA", nil).status(401)

		// Users cannot verify themselves or change email directly.
		s.do("PATCH", "/api/collections/users/records/"+anaID, anaTok, map[string]any{"verified": true}).status(400)
		s.do("PATCH", "/api/collections/users/records/"+anaID, anaTok, map[string]any{"email": "x@example.com"}).status(400)
		// Changing the password needs the old one, and revokes old tokens.
		r := s.do("PATCH", "/api/collections/users/records/"+anaID, anaTok, map[string]any{"password": "new-password-1", "passwordConfirm": "new-password-1"}).status(400)
		if r.fieldErr("oldPassword") == "" {
			t.Errorf("old password not required: %s", r.raw)
		}
		s.do("PATCH", "/api/collections/users/records/"+anaID, anaTok, map[string]any{"password": "short", "oldPassword": "password123"}).status(400)
		s.do("PATCH", "/api/collections/users/records/"+anaID, anaTok, map[string]any{"password": "new-password-1", "passwordConfirm": "different-1", "oldPassword": "password123"}).status(400)
		s.do("PATCH", "/api/collections/users/records/"+anaID, anaTok, map[string]any{"password": "new-password-1", "passwordConfirm": "new-password-1", "oldPassword": "password123"}).status(200)
		s.do("GET", "/api/collections/users/records", anaTok, nil).status(401)
		s.do("GET", "/api/collections/users/records", newTok, nil).status(401)
		s.do("GET", "/api/collections/users/records", bobTok, nil).status(200)
		s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "password123"}).status(400)
		s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "ANA@example.com", "password": "new-password-1"}).status(200)

		// Duplicate email (case-insensitive).
		d := s.do("POST", "/api/collections/users/records", "", map[string]any{"email": "BOB@example.com", "password": "password123"}).status(400)
		if d.fieldErr("email") != "validation_not_unique" {
			t.Errorf("duplicate email: %s", d.raw)
		}
		// Deleting the user invalidates its token.
		s.do("DELETE", "/api/collections/users/records/"+bobID, s.su, nil).status(204)
		s.do("GET", "/api/collections/users/records", bobTok, nil).status(401)
	})
}

func TestSuperuserManagement(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		ctx := t.Context()
		if err := s.app.UpsertSuperuser(ctx, "second@example.com", "short"); err == nil {
			t.Fatalf("short superuser password accepted")
		}
		if err := s.app.UpsertSuperuser(ctx, "second@example.com", "another-long-pass"); err != nil {
			t.Fatal(err)
		}
		tok := s.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": "second@example.com", "password": "another-long-pass"}).status(200).str("token")
		s.do("GET", "/api/collections", tok, nil).status(200)
		// Upsert changes the password and revokes old tokens.
		if err := s.app.UpsertSuperuser(ctx, "second@example.com", "changed-long-pass"); err != nil {
			t.Fatal(err)
		}
		s.do("GET", "/api/collections", tok, nil).status(401)
		ok, err := s.app.DeleteSuperuser(ctx, "second@example.com")
		if err != nil || !ok {
			t.Fatalf("delete: %v %v", ok, err)
		}
		s.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": "second@example.com", "password": "changed-long-pass"}).status(400)
		// The superusers collection cannot be dropped or renamed.
		s.do("DELETE", "/api/collections/_superusers", s.su, nil).status(400)
		s.do("PATCH", "/api/collections/_superusers", s.su, map[string]any{"name": "admins"}).status(400)
	})
}

func TestLoginRateLimits(t *testing.T) {
	s := startServerWith(t, t.TempDir(), "", func(c *plinth.Config) { c.AuthRatePerAccount = 5; c.AuthRatePerIP = 9 })
	s.loginSuperuser() // one attempt from this IP
	s.collection(map[string]any{"name": "users", "type": "auth", "createRule": ""})
	s.do("POST", "/api/collections/users/records", "", map[string]any{"email": "ana@example.com", "password": "password123"}).status(200)
	login := func(email, pw string) *response {
		return s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": email, "password": pw})
	}
	for i := 0; i < 5; i++ {
		login("ana@example.com", "wrong-guess").status(400)
	}
	r := login("ana@example.com", "password123").status(429) // even the right password: the account is cooling down
	if r.hdr.Get("Retry-After") == "" || r.body["status"] != 429.0 {
		t.Errorf("429 without Retry-After or error shape: %v %s", r.hdr, r.raw)
	}
	// Case does not give a fresh bucket.
	login("ANA@example.com", "wrong-guess").status(429)
	// Another account from the same IP until the IP budget (9 attempts, all counted) is spent.
	login("bob@example.com", "x-x-x-x-x").status(400)
	login("bob@example.com", "x-x-x-x-x").status(429)
}

func TestAuthOptionsAndImpersonation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.do("POST", "/api/collections", s.su, map[string]any{"name": "bad", "type": "auth",
			"fields": []any{map[string]any{"name": "username", "type": "text"}}, "authOptions": map[string]any{"identityFields": []string{"username"}}}).status(400)
		s.do("POST", "/api/collections", s.su, map[string]any{"name": "bad", "type": "auth", "authOptions": map[string]any{"manageRule": "nosuch = 1"}}).status(400)
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "viewRule": "", "listRule": "",
			"updateRule": `id = @request.auth.id || @request.auth.role = "admin"`,
			"fields":     []any{map[string]any{"name": "username", "type": "text"}, map[string]any{"name": "role", "type": "text"}},
			"indexes":    []any{map[string]any{"name": "idx_users_username", "columns": []string{"username"}, "unique": true}},
			"authOptions": map[string]any{"identityFields": []string{"email", "username"}, "requireVerified": true,
				"manageRule": `@request.auth.role = "admin"`}})
		admin := s.do("POST", "/api/collections/users/records", s.su, map[string]any{"email": "admin@example.com", "password": "password123", "username": "boss", "role": "admin", "verified": true}).status(200).str("id")
		member := s.do("POST", "/api/collections/users/records", "", map[string]any{"email": "m@example.com", "password": "password123", "username": "member1"}).status(200).str("id")
		login := func(id, pw string) *response {
			return s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": id, "password": pw})
		}
		// Unverified: refused after the password check; a wrong password looks like any other.
		login("member1", "password123").status(403)
		login("member1", "wrong-password").status(400)
		adminTok := login("boss", "password123").status(200).str("token") // username identity
		login("admin@example.com", "password123").status(200)
		// The manage rule lets the admin verify, re-key and re-address the member.
		s.do("PATCH", "/api/collections/users/records/"+member, adminTok, map[string]any{"verified": true, "password": "reset-by-admin", "email": "m2@example.com"}).status(200)
		memberTok := login("m2@example.com", "reset-by-admin").status(200).str("token")
		// The member is no manager.
		s.do("PATCH", "/api/collections/users/records/"+member, memberTok, map[string]any{"email": "m3@example.com"}).status(400)
		s.do("PATCH", "/api/collections/users/records/"+admin, memberTok, map[string]any{"password": "hijack-pass-1"}).status(403)

		// Impersonation: superusers only, short-lived, not refreshable.
		s.do("POST", "/api/collections/users/impersonate/"+member, adminTok, map[string]any{}).status(403)
		imp := s.do("POST", "/api/collections/users/impersonate/"+member, s.su, map[string]any{"duration": 60}).status(200)
		itok := imp.str("token")
		if got := s.do("GET", "/api/collections/users/records/"+member, itok, nil).status(200).body["email"]; got != "m2@example.com" {
			t.Errorf("impersonated view: %v", got)
		}
		s.do("POST", "/api/collections/users/auth-refresh", itok, nil).status(403)
		s.do("POST", "/api/collections/users/impersonate/nosuchuser00001", s.su, map[string]any{}).status(404)
	})
}

func TestSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "listRule": ""})
		s.do("POST", "/api/collections/users/records", "", map[string]any{"email": "ana@example.com", "password": "password123"}).status(200)
		_, bobTok := s.user("users", "bob@example.com", nil)
		loginAs := func(ua string) string {
			r := s.raw("POST", "/api/collections/users/auth-with-password", "", "application/json",
				[]byte(`{"identity":"ana@example.com","password":"password123"}`), map[string]string{"User-Agent": ua}).status(200)
			return r.body["token"].(string)
		}
		laptop, phone := loginAs("laptop-browser"), loginAs("phone-app")
		list := s.do("GET", "/api/collections/users/sessions", laptop, nil).status(200).body["items"].([]any)
		if len(list) != 2 {
			t.Fatalf("sessions: %v", list)
		}
		var phoneID string
		for _, it := range list {
			m := it.(map[string]any)
			if m["userAgent"] == "phone-app" {
				phoneID = m["id"].(string)
				if m["current"] != false {
					t.Errorf("phone marked current from the laptop")
				}
			} else if m["current"] != true {
				t.Errorf("laptop not marked current")
			}
		}
		// A refreshed token stays in its session.
		phone2 := s.do("POST", "/api/collections/users/auth-refresh", phone, nil).status(200).str("token")
		// Another user cannot end Ana's session.
		s.do("DELETE", "/api/collections/users/sessions/"+phoneID, bobTok, nil).status(404)
		s.do("DELETE", "/api/collections/users/sessions/"+phoneID, laptop, nil).status(204)
		s.do("GET", "/api/collections/users/records", phone, nil).status(401)
		s.do("GET", "/api/collections/users/records", phone2, nil).status(401)
		s.do("GET", "/api/collections/users/records", laptop, nil).status(200)
		s.do("GET", "/api/collections/users/sessions", "", nil).status(401)
		// Log out everywhere.
		s.do("POST", "/api/collections/users/logout-all", laptop, nil).status(204)
		s.do("GET", "/api/collections/users/records", laptop, nil).status(401)
		s.do("GET", "/api/collections/users/records", bobTok, nil).status(200)
		// A password change ends the other sessions: only the new login is listed.
		a, b := loginAs("a"), loginAs("b")
		var anaID string
		for _, it := range s.do("GET", "/api/collections/users/records", a, nil).status(200).items() {
			if it["email"] == "ana@example.com" {
				anaID = it["id"].(string)
			}
		}
		s.do("PATCH", "/api/collections/users/records/"+anaID, s.su, map[string]any{"password": "changed-pass-1"}).status(200)
		s.do("GET", "/api/collections/users/records", b, nil).status(401)
		c := s.raw("POST", "/api/collections/users/auth-with-password", "", "application/json",
			[]byte(`{"identity":"ana@example.com","password":"changed-pass-1"}`), nil).status(200).body["token"].(string)
		if n := len(s.do("GET", "/api/collections/users/sessions", c, nil).status(200).body["items"].([]any)); n != 1 {
			t.Errorf("%d sessions listed after a password change, want 1", n)
		}
	})
}
