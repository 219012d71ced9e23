package tests

import (
	"fmt"
	"testing"
)

// Shapes PocketBase's client SDKs rely on: every list pages (getFullList
// stops at a short page), health carries "code", auth-methods lists
// providers as an array (never null) with the OTP and MFA durations.
func TestPocketBaseClientShapes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		if code := s.do("GET", "/api/health", "", nil).status(200).body["code"]; code != 200.0 {
			t.Errorf("health code = %v", code)
		}
		for i := 0; i < 5; i++ {
			s.collection(map[string]any{"name": fmt.Sprintf("c%d", i)})
		}
		total := 6 // _superusers and the five
		seen := map[string]bool{}
		for page := 1; page <= 10; page++ {
			r := s.do("GET", fmt.Sprintf("/api/collections?page=%d&perPage=2", page), s.su, nil).status(200)
			items := r.items()
			if r.body["totalItems"] != float64(total) || r.body["totalPages"] != 3.0 || r.body["page"] != float64(page) {
				t.Fatalf("page %d: %s", page, r.raw)
			}
			for _, it := range items {
				seen[it["name"].(string)] = true
			}
			if len(items) < 2 {
				break
			}
		}
		if len(seen) != total {
			t.Errorf("paging saw %d collections, want %d", len(seen), total)
		}
		if r := s.do("GET", "/api/collections?perPage=2&skipTotal=1", s.su, nil).status(200); r.body["totalItems"] != -1.0 || len(r.items()) != 2 {
			t.Errorf("skipTotal: %s", r.raw)
		}
		s.do("GET", "/api/collections?page=x", s.su, nil).status(400)

		s.collection(map[string]any{"name": "users", "type": "auth", "authOptions": map[string]any{"otp": map[string]any{"enabled": true, "duration": 120}}})
		m := s.do("GET", "/api/collections/users/auth-methods", "", nil).status(200).body
		providers, ok := m["oauth2"].(map[string]any)["providers"].([]any)
		if !ok || len(providers) != 0 {
			t.Errorf("oauth2 providers = %#v, want []", m["oauth2"])
		}
		if m["otp"].(map[string]any)["duration"] != 120.0 || m["mfa"].(map[string]any)["duration"] != 600.0 {
			t.Errorf("durations: %v %v", m["otp"], m["mfa"])
		}
	})
}
