package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/plinthhq/plinth"
)

// storedFiles lists what the storage holds, to prove nothing is left behind.
type storedFiles func() []string

// forEachStorage runs fn with local-disk storage and with an S3 server
// (gofakes3, a real S3 protocol implementation) on 127.0.0.1.
func forEachStorage(t *testing.T, fn func(t *testing.T, s *server, list storedFiles)) {
	forEachStorageWith(t, func(t *testing.T, s *server, st testStorage) { fn(t, s, st.list) })
}

// testStorage reads and writes a test server's file storage directly,
// behind the server's back, as a crash would have left it.
type testStorage struct {
	list storedFiles
	put  func(key string, data []byte)
}

func forEachStorageWith(t *testing.T, fn func(t *testing.T, s *server, st testStorage)) {
	t.Run("local", func(t *testing.T) {
		dir := t.TempDir()
		s := startServerWith(t, dir, "", nil)
		s.loginSuperuser()
		root := filepath.Join(dir, "storage")
		fn(t, s, testStorage{
			list: func() []string {
				var out []string
				filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						rel, _ := filepath.Rel(root, p)
						out = append(out, filepath.ToSlash(rel))
					}
					return nil
				})
				return out
			},
			put: func(key string, data []byte) {
				p := filepath.Join(root, filepath.FromSlash(key))
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
			},
		})
	})
	t.Run("s3", func(t *testing.T) {
		backend := s3mem.New()
		if err := backend.CreateBucket("plinth"); err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(gofakes3.New(backend).Server())
		defer ts.Close()
		s := startServerWith(t, t.TempDir(), "", func(c *plinth.Config) {
			c.S3 = plinth.S3Config{Endpoint: ts.URL, Region: "us-east-1", Bucket: "plinth", AccessKey: "key", SecretKey: "secret", PathStyle: true}
		})
		s.loginSuperuser()
		fn(t, s, testStorage{
			list: func() []string {
				res, err := backend.ListBucket("plinth", nil, gofakes3.ListBucketPage{})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, c := range res.Contents {
					out = append(out, c.Key)
				}
				return out
			},
			put: func(key string, data []byte) {
				if _, err := backend.PutObject("plinth", key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
					t.Fatal(err)
				}
			},
		})
	})
}

func (s *server) loginSuperuser() {
	if err := s.app.UpsertSuperuser(context.Background(), suEmail, suPassword); err != nil {
		s.t.Fatal(err)
	}
	s.su = s.do("POST", "/api/superusers/auth-with-password", "", map[string]any{"identity": suEmail, "password": suPassword}).status(200).str("token")
}

func pngBytes(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 100, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type part struct {
	field, filename string
	data            []byte
}

// multipartReq sends a multipart body; json fields go in @jsonPayload.
func (s *server) multipartReq(method, path, token string, fields map[string]any, parts ...part) *response {
	s.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if fields != nil {
		j, _ := json.Marshal(fields)
		mw.WriteField("@jsonPayload", string(j))
	}
	for _, p := range parts {
		if p.filename == "" {
			mw.WriteField(p.field, string(p.data))
			continue
		}
		w, _ := mw.CreateFormFile(p.field, p.filename)
		w.Write(p.data)
	}
	mw.Close()
	return s.raw(method, path, token, mw.FormDataContentType(), buf.Bytes(), nil)
}

func (s *server) raw(method, path, token, ctype string, body []byte, hdr map[string]string) *response {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := &response{t: s.t, code: resp.StatusCode, raw: raw, req: method + " " + path, hdr: resp.Header}
	if len(raw) > 0 && raw[0] == '{' {
		json.Unmarshal(raw, &r.body)
	}
	if resp.StatusCode >= 500 {
		s.t.Errorf("%s: server error %d: %s", r.req, resp.StatusCode, raw)
	}
	return r
}

func filesFixture(s *server) (string, string, string, string) {
	s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": ""})
	ana, anaTok := s.user("users", "ana@example.com", nil)
	_, bobTok := s.user("users", "bob@example.com", nil)
	s.collection(map[string]any{"name": "docs",
		"listRule": "", "viewRule": "owner = @request.auth.id || public = true", "createRule": "@request.auth.id != '' && owner = @request.auth.id",
		"updateRule": "owner = @request.auth.id", "deleteRule": "owner = @request.auth.id",
		"fields": []any{
			map[string]any{"name": "owner", "type": "relation", "collectionId": "users"},
			map[string]any{"name": "title", "type": "text"},
			map[string]any{"name": "public", "type": "bool"},
			map[string]any{"name": "avatar", "type": "file", "maxSize": 200000, "mimeTypes": []string{"image/png", "image/jpeg"}, "thumbs": []string{"100x100", "50x0"}},
			map[string]any{"name": "attachments", "type": "file", "maxSelect": 3, "maxSize": 100000},
			map[string]any{"name": "secret", "type": "file", "protected": true},
		}})
	return ana, anaTok, bobTok, ""
}

func TestFileUploadServeAndCleanup(t *testing.T) {
	forEachStorage(t, func(t *testing.T, s *server, list storedFiles) {
		ana, anaTok, _, _ := filesFixture(s)
		img := pngBytes(t, 300, 200)
		rec := s.multipartReq("POST", "/api/collections/docs/records", anaTok, map[string]any{"owner": ana, "title": "hello", "public": true},
			part{"avatar", "../../etc/Me & You.PNG", img},
			part{"attachments", "a.txt", []byte("first attachment")},
			part{"attachments", "b.txt", []byte("second attachment")},
		).status(200)
		id := rec.str("id")
		avatar := rec.str("avatar")
		if strings.ContainsAny(avatar, "/\\ &") || !strings.HasPrefix(avatar, "Me___You_") || !strings.HasSuffix(avatar, ".png") {
			t.Errorf("stored name %q", avatar)
		}
		atts := rec.body["attachments"].([]any)
		if len(atts) != 2 || rec.body["title"] != "hello" {
			t.Fatalf("record %s", rec.raw)
		}
		url := "/api/files/docs/" + id + "/" + avatar
		r := s.raw("GET", url, "", "", nil, nil).status(200)
		if !bytes.Equal(r.raw, img) || r.hdr.Get("Content-Type") != "image/png" || !strings.HasPrefix(r.hdr.Get("Content-Disposition"), "inline") ||
			r.hdr.Get("X-Content-Type-Options") != "nosniff" || r.hdr.Get("ETag") == "" || r.hdr.Get("Last-Modified") == "" {
			t.Errorf("file response headers %v", r.hdr)
		}
		s.raw("GET", url, "", "", nil, map[string]string{"If-None-Match": r.hdr.Get("ETag")}).status(304)
		if d := s.raw("GET", url+"?download=1", "", "", nil, nil).status(200).hdr.Get("Content-Disposition"); !strings.HasPrefix(d, "attachment") {
			t.Errorf("download disposition %q", d)
		}
		rg := s.raw("GET", url, "", "", nil, map[string]string{"Range": "bytes=0-9"}).status(206)
		if !bytes.Equal(rg.raw, img[:10]) {
			t.Errorf("range body")
		}
		s.raw("GET", url, "", "", nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(img)+10)}).status(416)
		th := s.raw("GET", url+"?thumb=100x100", "", "", nil, nil).status(200)
		cfg, _, err := image.DecodeConfig(bytes.NewReader(th.raw))
		if err != nil || cfg.Width != 100 || cfg.Height != 100 {
			t.Errorf("thumb: %v %+v", err, cfg)
		}
		th2 := s.raw("GET", url+"?thumb=50x0", "", "", nil, nil).status(200)
		if cfg, _, _ := image.DecodeConfig(bytes.NewReader(th2.raw)); cfg.Width != 50 || cfg.Height != 33 {
			t.Errorf("aspect thumb %+v", cfg)
		}
		s.raw("GET", url+"?thumb=999x999", "", "", nil, nil).status(400)
		s.raw("GET", "/api/files/docs/"+id+"/..%2F..%2Fetc%2Fpasswd", "", "", nil, nil).status(404)
		s.raw("GET", "/api/files/docs/"+id+"/not_mine.png", "", "", nil, nil).status(404)
		// 1 original + 2 attachments + 2 cached thumbs.
		if n := len(list()); n != 5 {
			t.Errorf("stored %d objects: %v", n, list())
		}

		// Append one attachment, remove another; replace the avatar.
		upd := s.multipartReq("PATCH", "/api/collections/docs/records/"+id, anaTok, nil,
			part{"attachments+", "c.txt", []byte("third")},
			part{"attachments-", "", []byte(atts[0].(string))},
			part{"avatar", "new.png", pngBytes(t, 20, 20)},
		).status(200)
		natts := upd.body["attachments"].([]any)
		if len(natts) != 2 || natts[0] != atts[1] || upd.str("avatar") == avatar {
			t.Fatalf("update: %s", upd.raw)
		}
		s.raw("GET", url, "", "", nil, nil).status(404)
		s.raw("GET", "/api/files/docs/"+id+"/"+atts[0].(string), "", "", nil, nil).status(404)
		if n := len(list()); n != 3 {
			t.Errorf("after update %d objects (old avatar, its thumbs and removed attachment must go): %v", n, list())
		}
		// JSON cannot point a file field at names that were never uploaded here.
		bad := s.do("PATCH", "/api/collections/docs/records/"+id, anaTok, map[string]any{"attachments": []string{"other_abcdefghij.txt"}}).status(400)
		if bad.fieldErr("attachments") != "validation_invalid_file" {
			t.Errorf("foreign name: %s", bad.raw)
		}
		// JSON may keep a subset.
		s.do("PATCH", "/api/collections/docs/records/"+id, anaTok, map[string]any{"attachments": []any{natts[0]}}).status(200)
		if n := len(list()); n != 2 {
			t.Errorf("after JSON removal %d objects", n)
		}
		// Deleting the record deletes its files.
		s.do("DELETE", "/api/collections/docs/records/"+id, anaTok, nil).status(204)
		if n := len(list()); n != 0 {
			t.Errorf("after delete: %v", list())
		}
	})
}

func TestFileBadInputs(t *testing.T) {
	forEachStorage(t, func(t *testing.T, s *server, list storedFiles) {
		ana, anaTok, bobTok, _ := filesFixture(s)
		meta := map[string]any{"owner": ana}
		cases := []struct {
			name  string
			parts []part
			field string
			code  string
		}{
			{"text disguised as png", []part{{"avatar", "evil.png", []byte("<html><script>alert(1)</script></html>")}}, "avatar", "validation_invalid_mime_type"},
			{"oversize", []part{{"avatar", "big.png", append(pngBytes(t, 10, 10), make([]byte, 300000)...)}}, "avatar", "validation_file_size_limit"},
			{"too many", []part{{"attachments", "1.txt", []byte("1")}, {"attachments", "2.txt", []byte("2")}, {"attachments", "3.txt", []byte("3")}, {"attachments", "4.txt", []byte("4")}}, "attachments", "validation_too_many_values"},
			{"not a file field", []part{{"title", "x.txt", []byte("x")}}, "title", "validation_not_file_field"},
			{"two files in a single field", []part{{"avatar", "a.png", pngBytes(t, 5, 5)}, {"avatar", "b.png", pngBytes(t, 5, 5)}}, "avatar", "validation_too_many_values"},
		}
		for _, c := range cases {
			r := s.multipartReq("POST", "/api/collections/docs/records", anaTok, meta, c.parts...).status(400)
			if r.fieldErr(c.field) != c.code {
				t.Errorf("%s: %s", c.name, r.raw)
			}
			if n := len(list()); n != 0 {
				t.Fatalf("%s left %v behind", c.name, list())
			}
		}
		// Truncated multipart body.
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		w, _ := mw.CreateFormFile("attachments", "cut.txt")
		w.Write(bytes.Repeat([]byte("x"), 5000))
		mw.Close()
		cut := buf.Bytes()[:buf.Len()-60]
		s.raw("POST", "/api/collections/docs/records", anaTok, mw.FormDataContentType(), cut, nil).status(400)
		// A rule rejection rolls back the upload too.
		s.multipartReq("POST", "/api/collections/docs/records", bobTok, meta, part{"attachments", "x.txt", []byte("x")}).status(403)
		if n := len(list()); n != 0 {
			t.Fatalf("rejected uploads left %v", list())
		}
	})
}

func TestProtectedFiles(t *testing.T) {
	forEachStorage(t, func(t *testing.T, s *server, _ storedFiles) {
		ana, anaTok, bobTok, _ := filesFixture(s)
		rec := s.multipartReq("POST", "/api/collections/docs/records", anaTok, map[string]any{"owner": ana}, part{"secret", "s.txt", []byte("top secret")}).status(200)
		url := "/api/files/docs/" + rec.str("id") + "/" + rec.str("secret")
		s.raw("GET", url, "", "", nil, nil).status(403)
		s.raw("GET", url+"?token="+anaTok, "", "", nil, nil).status(403) // an auth token is not a file token
		ft := s.do("POST", "/api/files/token", anaTok, nil).status(200).str("token")
		got := s.raw("GET", url+"?token="+ft, "", "", nil, nil).status(200)
		if string(got.raw) != "top secret" || got.hdr.Get("Cache-Control") != "private, no-store" {
			t.Errorf("protected read: %q %v", got.raw, got.hdr)
		}
		bt := s.do("POST", "/api/files/token", bobTok, nil).status(200).str("token")
		s.raw("GET", url+"?token="+bt, "", "", nil, nil).status(404) // bob may not view the record
		s.do("POST", "/api/files/token", "", nil).status(401)
	})
}

// TestLargeUploadStreams uploads 256 MiB through a pipe and samples the
// server's heap meanwhile: it must stay flat (generous bound: 64 MiB).
func TestLargeUploadStreams(t *testing.T) {
	dir := t.TempDir()
	s := startServerWith(t, dir, "", func(c *plinth.Config) { c.MaxUploadBytes = 1 << 30 })
	s.loginSuperuser()
	s.collection(map[string]any{"name": "blobs", "createRule": "", "viewRule": "", "fields": []any{
		map[string]any{"name": "data", "type": "file", "maxSize": 1 << 30}}})
	const size = 256 << 20
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		w, _ := mw.CreateFormFile("data", "big.bin")
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
		for written := 0; written < size; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		mw.Close()
		pw.Close()
	}()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	}()
	req, _ := http.NewRequest("POST", s.url+"/api/collections/blobs/records", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	growth := int64(peak) - int64(base)
	t.Logf("256 MiB upload: heap in use grew by %.1f MiB at peak", float64(growth)/(1<<20))
	if growth > 64<<20 {
		t.Errorf("heap grew by %d MiB while streaming 256 MiB", growth>>20)
	}
}

// Superusers see what the server runs with (never a secret) and can test
// the file storage: a probe is written, read back and deleted; a storage
// that fails says at which step.
func TestRuntimeSettingsAndStorageTest(t *testing.T) {
	forEachStorageWith(t, func(t *testing.T, s *server, st testStorage) {
		rt := s.do("GET", "/api/settings/runtime", s.su, nil).status(200)
		if strings.Contains(string(rt.raw), "secret") || rt.body["storage"] == nil || rt.body["rateLimits"] == nil {
			t.Errorf("runtime: %s", rt.raw)
		}
		s.do("GET", "/api/settings/runtime", "", nil).status(403)
		s.do("POST", "/api/settings/test/storage", "", nil).status(403)
		r := s.do("POST", "/api/settings/test/storage", s.su, nil).status(200)
		if !strings.Contains(r.str("message"), "Storage works") {
			t.Errorf("storage test: %s", r.raw)
		}
		if left := st.list(); len(left) != 0 {
			t.Errorf("the probe was left behind: %v", left)
		}
	})
	// An S3 endpoint that finds the bucket but refuses writes (a full or
	// read-only store): the step is named.
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead || r.Method == http.MethodGet {
			return
		}
		http.Error(w, "no", 500)
	}))
	defer dead.Close()
	s := startServerWith(t, t.TempDir(), "", func(c *plinth.Config) {
		c.S3 = plinth.S3Config{Endpoint: dead.URL, Region: "us-east-1", Bucket: "plinth", AccessKey: "key", SecretKey: "secret", PathStyle: true}
	})
	s.loginSuperuser()
	r := s.do("POST", "/api/settings/test/storage", s.su, nil).status(400)
	if !strings.Contains(r.str("message"), "writing a probe object") || r.fieldErr("storage") == "" {
		t.Errorf("failing storage: %s", r.raw)
	}
}
