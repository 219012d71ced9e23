package tests

import (
	"testing"

	"github.com/plinthhq/plinth"
)

var demoSmall = plinth.DemoOptions{Users: 50, Posts: 300, Follows: 200, Likes: 200, Seed: 7}

// TestMicroblogSession plays a short session of the showcase app through
// HTTP only: sign up, follow, post, like, read the timeline, and checks
// the rules hold against a user acting for another.
func TestMicroblogSession(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		if _, err := s.app.InstallDemo(t.Context()); err != nil {
			t.Fatal(err)
		}
		signup := func(name, handle, email string) (string, string) {
			t.Helper()
			rec := s.do("POST", "/api/collections/users/records", "", map[string]any{"name": name, "handle": handle, "email": email, "password": "password123"}).status(200)
			tok := s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": email, "password": "password123"}).status(200).str("token")
			return rec.str("id"), tok
		}
		anaID, ana := signup("Ana", "ana", "ana@example.com")
		bobID, bob := signup("Bob", "bob_b", "bob@example.com")
		// Profile validation from the schema.
		bad := s.do("POST", "/api/collections/users/records", "", map[string]any{"name": "X", "handle": "Bad Handle!", "email": "x@example.com", "password": "password123"}).status(400)
		if bad.fieldErr("handle") != "validation_invalid_format" {
			t.Errorf("handle pattern: %s", bad.raw)
		}
		dup := s.do("POST", "/api/collections/users/records", "", map[string]any{"name": "X", "handle": "ana", "email": "x@example.com", "password": "password123"}).status(400)
		if dup.fieldErr("handle") != "validation_not_unique" {
			t.Errorf("handle unique: %s", dup.raw)
		}

		// Bob follows Ana; following twice or as someone else fails.
		s.do("POST", "/api/collections/follows/records", bob, map[string]any{"follower": bobID, "followee": anaID}).status(200)
		s.do("POST", "/api/collections/follows/records", bob, map[string]any{"follower": bobID, "followee": anaID}).status(400)
		s.do("POST", "/api/collections/follows/records", bob, map[string]any{"follower": anaID, "followee": bobID}).status(403)
		s.do("POST", "/api/collections/follows/records", bob, map[string]any{"follower": bobID, "followee": bobID}).status(403)

		// Ana posts; Bob cannot post as Ana; anonymous cannot post.
		postID := s.do("POST", "/api/collections/posts/records", ana, map[string]any{"author": anaID, "text": "hello from ana"}).status(200).str("id")
		s.do("POST", "/api/collections/posts/records", bob, map[string]any{"author": anaID, "text": "forged"}).status(403)
		s.do("POST", "/api/collections/posts/records", "", map[string]any{"author": anaID, "text": "anon"}).status(403)
		s.do("POST", "/api/collections/posts/records", ana, map[string]any{"author": anaID, "text": ""}).status(400)
		long := make([]byte, 281)
		for i := range long {
			long[i] = 'x'
		}
		s.do("POST", "/api/collections/posts/records", ana, map[string]any{"author": anaID, "text": string(long)}).status(400)
		bobPost := s.do("POST", "/api/collections/posts/records", bob, map[string]any{"author": bobID, "text": "bob here", "reply_to": postID}).status(200).str("id")

		// Bob likes Ana's post, once.
		s.do("POST", "/api/collections/likes/records", bob, map[string]any{"user": bobID, "post": postID}).status(200)
		s.do("POST", "/api/collections/likes/records", bob, map[string]any{"user": bobID, "post": postID}).status(400)
		s.do("POST", "/api/collections/likes/records", ana, map[string]any{"user": bobID, "post": postID}).status(403)
		likes := s.do("GET", "/api/collections/likes/records?filter="+q(`post = "`+postID+`"`), "", nil).status(200)
		if likes.body["totalItems"] != 1.0 {
			t.Errorf("likes: %s", likes.raw)
		}

		// Bob's timeline shows Ana's post, newest first, with the author expanded; Ana's is empty.
		tl := s.do("GET", "/api/collections/timeline/records?sort=-created&expand=author", bob, nil).status(200).items()
		if len(tl) != 1 || tl[0]["post"] != postID || tl[0]["expand"].(map[string]any)["author"].(map[string]any)["handle"] != "ana" {
			t.Errorf("bob's timeline: %v", tl)
		}
		if n := len(s.do("GET", "/api/collections/timeline/records", ana, nil).status(200).items()); n != 0 {
			t.Errorf("ana's timeline has %d entries", n)
		}
		if n := len(s.do("GET", "/api/collections/timeline/records", "", nil).status(200).items()); n != 0 {
			t.Errorf("anonymous timeline has %d entries", n)
		}

		// Feed with expansion; email hidden from others, visible to self.
		feed := s.do("GET", "/api/collections/posts/records?sort=-created&expand=author,reply_to", "", nil).status(200).items()
		if len(feed) != 2 {
			t.Fatalf("feed: %v", feed)
		}
		for _, p := range feed {
			if _, ok := p["expand"].(map[string]any)["author"].(map[string]any)["email"]; ok {
				t.Errorf("email leaked in feed expansion")
			}
		}
		if _, ok := s.do("GET", "/api/collections/users/records/"+anaID, bob, nil).status(200).body["email"]; ok {
			t.Errorf("ana's email visible to bob")
		}
		if s.do("GET", "/api/collections/users/records/"+anaID, ana, nil).status(200).body["email"] != "ana@example.com" {
			t.Errorf("ana cannot see her own email")
		}

		// Bob cannot edit or delete Ana's post, or Ana's profile.
		s.do("PATCH", "/api/collections/posts/records/"+postID, bob, map[string]any{"text": "hacked"}).status(403)
		s.do("DELETE", "/api/collections/posts/records/"+postID, bob, nil).status(403)
		s.do("PATCH", "/api/collections/users/records/"+anaID, bob, map[string]any{"name": "hacked"}).status(403)
		if got := s.do("GET", "/api/collections/posts/records/"+postID, "", nil).status(200).body["text"]; got != "hello from ana" {
			t.Errorf("post changed: %v", got)
		}
		// Ana deletes her post; Bob's like goes with it (cascade), Bob's reply stays.
		s.do("DELETE", "/api/collections/posts/records/"+postID, ana, nil).status(204)
		if n := s.do("GET", "/api/collections/likes/records", "", nil).status(200).body["totalItems"]; n != 0.0 {
			t.Errorf("likes after delete: %v", n)
		}
		if got := s.do("GET", "/api/collections/posts/records/"+bobPost, "", nil).status(200).body["reply_to"]; got != "" {
			t.Errorf("reply_to not cleared: %v", got)
		}
		// A post with an image: uploaded with the text, in Bob's timeline,
		// served with a thumbnail; a non-image is refused.
		img := s.multipartReq("POST", "/api/collections/posts/records", ana, map[string]any{"author": anaID, "text": "look"},
			part{"image", "cat.png", pngBytes(t, 800, 600)}).status(200)
		s.multipartReq("POST", "/api/collections/posts/records", ana, map[string]any{"author": anaID, "text": "not an image"},
			part{"image", "cat.png", []byte("plain text pretending")}).status(400)
		tl = s.do("GET", "/api/collections/timeline/records?sort=-created", bob, nil).status(200).items()
		if len(tl) != 1 || tl[0]["image"] != img.str("image") {
			t.Errorf("timeline image: %v", tl)
		}
		th := s.raw("GET", "/api/files/posts/"+img.str("id")+"/"+img.str("image")+"?thumb=600x0", "", "", nil, nil).status(200)
		if th.hdr.Get("Content-Type") != "image/png" || len(th.raw) == 0 {
			t.Errorf("image thumb: %v", th.hdr)
		}
		// Bob unfollows.
		f := s.do("GET", "/api/collections/follows/records?filter="+q(`follower = "`+bobID+`"`), "", nil).status(200).items()
		s.do("DELETE", "/api/collections/follows/records/"+f[0]["id"].(string), ana, nil).status(403)
		s.do("DELETE", "/api/collections/follows/records/"+f[0]["id"].(string), bob, nil).status(204)
	})
}

func TestDemoSeedAndWebClient(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		if _, err := s.app.InstallDemo(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := s.app.SeedDemo(t.Context(), demoSmall); err != nil {
			t.Fatal(err)
		}
		r := s.do("GET", "/api/collections/posts/records?perPage=1", "", nil).status(200)
		if r.body["totalItems"] != float64(demoSmall.Posts) {
			t.Errorf("posts seeded: %v", r.body["totalItems"])
		}
		tok := s.do("POST", "/api/collections/users/auth-with-password", "", map[string]any{"identity": "user00001@example.com", "password": "microblog-demo"}).status(200).str("token")
		s.do("GET", "/api/collections/timeline/records?sort=-created&expand=author", tok, nil).status(200)
	})
}
