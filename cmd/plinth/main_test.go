package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the real plinth command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "plinth-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "plinth")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return binPath
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary(t), args...).CombinedOutput()
	return string(out), err
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"superuser", "--help"}, {"superuser", "upsert", "--help"}, {"superuser", "delete", "--help"}, {"version", "--help"}, {"schema", "import", "--help"}, {"schema", "export", "--help"}} {
		out, err := run(t, args...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: %v %s", args, err, out)
		}
	}
	if out, err := run(t, "version"); err != nil || !strings.HasPrefix(out, "plinth ") {
		t.Errorf("version: %v %q", err, out)
	}
	if _, err := run(t, "no-such-command"); err == nil {
		t.Errorf("unknown command succeeded")
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServeSuperuserAndGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	if out, err := run(t, "superuser", "upsert", "--dir", dir, "admin@example.com", "short"); err == nil {
		t.Fatalf("short password accepted: %s", out)
	}
	if out, err := run(t, "superuser", "upsert", "--dir", dir, "admin@example.com", "long-enough-pass"); err != nil {
		t.Fatalf("upsert: %v %s", err, out)
	}
	addr := freePort(t)
	cmd := exec.Command(binary(t), "serve", "--dir", dir, "--http", addr)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	up := false
	for i := 0; i < 100 && !up; i++ {
		if resp, err := http.Get(base + "/api/health"); err == nil {
			resp.Body.Close()
			up = resp.StatusCode == 200
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !up {
		cmd.Process.Kill()
		t.Fatalf("server did not come up: %s", logs.String())
	}
	body := `{"identity":"admin@example.com","password":"long-enough-pass"}`
	resp, err := http.Post(base+"/api/superusers/auth-with-password", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login: %v %v", err, resp)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", base+"/api/collections", strings.NewReader(`{"name":"notes","fields":[{"name":"t","type":"text"}]}`))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("create collection: %v %v", err, resp)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no exit after SIGTERM")
	}
	// A clean close checkpoints the WAL into the main file.
	if fi, err := os.Stat(filepath.Join(dir, "data.db-wal")); err == nil && fi.Size() > 0 {
		t.Errorf("WAL not checkpointed on shutdown: %d bytes", fi.Size())
	}
	if out, err := run(t, "superuser", "delete", "--dir", dir, "admin@example.com"); err != nil {
		t.Fatalf("delete: %v %s", err, out)
	}
	if _, err := run(t, "superuser", "delete", "--dir", dir, "admin@example.com"); err == nil {
		t.Errorf("deleting a missing superuser succeeded")
	}
}

// plinth schema import/export: a PocketBase-shaped file imports, the
// export imports into a fresh data directory and exports the same, a bad
// file fails naming what is wrong.
func TestSchemaImportExport(t *testing.T) {
	dir, dir2 := t.TempDir(), t.TempDir()
	pb := filepath.Join(t.TempDir(), "pb_schema.json")
	os.WriteFile(pb, []byte(`[
	  {"id": "_pb_users_auth_", "name": "users", "type": "auth", "listRule": "id = @request.auth.id", "authRule": "",
	   "passwordAuth": {"enabled": true, "identityFields": ["email"]}, "authToken": {"duration": 3600},
	   "fields": [{"id": "text3208210256", "name": "id", "type": "text", "system": true, "primaryKey": true},
	              {"id": "text1", "name": "name", "type": "text", "max": 0, "min": 0, "presentable": false}],
	   "indexes": []},
	  {"id": "pbc_1", "name": "posts", "type": "base", "listRule": "",
	   "fields": [{"id": "r1", "name": "author", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1, "minSelect": 0},
	              {"id": "t1", "name": "slug", "type": "text", "max": 0, "min": 0}],
	   "indexes": ["CREATE UNIQUE INDEX `+"`idx_slug`"+` ON `+"`posts` (`slug`)"+`"]}
	]`), 0o644)
	if out, err := run(t, "schema", "import", "--dir", dir, pb); err != nil || !strings.Contains(out, "imported") {
		t.Fatalf("import: %v %s", err, out)
	}
	exported := filepath.Join(t.TempDir(), "export.json")
	if out, err := run(t, "schema", "export", "--dir", dir, exported); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	if out, err := run(t, "schema", "import", "--dir", dir2, exported); err != nil {
		t.Fatalf("re-import: %v %s", err, out)
	}
	first, _ := os.ReadFile(exported)
	second, err := exec.Command(binary(t), "schema", "export", "--dir", dir2).Output()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := schemaShape(t, first), schemaShape(t, second); a != b {
		t.Errorf("export after re-import differs:\n%s\n%s", a, b)
	}
	if !strings.Contains(string(first), `"idx_slug"`) || !strings.Contains(string(first), `"tokenDuration": 3600`) {
		t.Errorf("export lacks the imported index or options: %s", first)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`[{"name": "b", "fields": [{"name": "t", "type": "text"}], "indexes": ["CREATE INDEX ix ON b (lower(t))"]}]`), 0o644)
	if out, err := run(t, "schema", "import", "--dir", dir, bad); err == nil || !strings.Contains(out, "collection b") || !strings.Contains(out, "indexes.0") {
		t.Errorf("bad import: %v %s", err, out)
	}
}

// schemaShape is an export without what differs between installations:
// timestamps, and the ids each one makes for its own collections and
// fields (the system ones, and the users collection a new database starts
// with, which an import updates in place), so collections and relation
// targets are named by collection name.
func schemaShape(t *testing.T, data []byte) string {
	var list []map[string]any
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatalf("export is not a JSON array: %v", err)
	}
	names := map[any]any{}
	for _, c := range list {
		names[c["id"]] = c["name"]
	}
	for _, c := range list {
		delete(c, "created")
		delete(c, "updated")
		c["id"] = c["name"]
		for _, f := range c["fields"].([]any) {
			fm := f.(map[string]any)
			delete(fm, "id") // a field adopted from the default users keeps its local id
			if id, ok := fm["collectionId"]; ok {
				fm["collectionId"] = names[id]
			}
		}
	}
	out, _ := json.Marshal(list)
	return string(out)
}

func TestTypegen(t *testing.T) {
	dir := t.TempDir()
	schemaFile := filepath.Join(t.TempDir(), "schema.json")
	os.WriteFile(schemaFile, []byte(`[{"name": "blog_posts", "listRule": "",
	  "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"}]}]`), 0o644)
	if out, err := run(t, "schema", "import", "--dir", dir, schemaFile); err != nil {
		t.Fatalf("import: %v %s", err, out)
	}
	outFile := filepath.Join(t.TempDir(), "pb.ts")
	cases := []struct {
		name string
		args []string
		file string // where the output lands; "" means stdout
		ok   bool
	}{
		{"stdout", []string{"typegen", "--dir", dir}, "", true},
		{"file", []string{"typegen", "--lang", "ts", "--out", outFile, "--dir", dir}, outFile, true},
		{"unknown language", []string{"typegen", "--lang", "go", "--dir", dir}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, tc.args...)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v: %s", err, tc.ok, out)
			}
			if !tc.ok {
				if !strings.Contains(out, "only \"ts\"") {
					t.Errorf("unclear error: %s", out)
				}
				return
			}
			if tc.file != "" {
				data, err := os.ReadFile(tc.file)
				if err != nil {
					t.Fatal(err)
				}
				out = string(data)
			}
			for _, want := range []string{"export interface BlogPostsRecord {", "\ttitle: string\n", "\tn: number\n",
				`collection(idOrName: "blog_posts"): RecordService<BlogPostsRecord>`, "export interface TypedPocketBase extends PocketBase {"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestMigrateCommands(t *testing.T) {
	data, migs := t.TempDir(), filepath.Join(t.TempDir(), "m")
	out, err := run(t, "migrate", "create", "notes", "--dir", data, "--migrations-dir", migs)
	if err != nil || !strings.Contains(out, "0001_notes.json") {
		t.Fatalf("create: %v %s", err, out)
	}
	body := `{"up":[{"createCollection":{"name":"notes","fields":[{"name":"body","type":"text"}]}}],"down":[{"deleteCollection":"notes"}]}`
	if err := os.WriteFile(filepath.Join(migs, "0001_notes.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"status"}, "pending\t0001_notes"},
		{[]string{"up"}, "applied 0001_notes"},
		{[]string{"status"}, "applied\t0001_notes"},
		{[]string{"down"}, "reverted 0001_notes"},
		{[]string{"status"}, "pending\t0001_notes"},
		{[]string{"up", "1"}, "applied 0001_notes"},
	}
	for _, s := range steps {
		args := append([]string{"migrate"}, s.args...)
		args = append(args, "--dir", data, "--migrations-dir", migs)
		out, err := run(t, args...)
		if err != nil || !strings.Contains(out, s.want) {
			t.Fatalf("%v: %v %s", s.args, err, out)
		}
	}
	out, err = run(t, "schema", "export", "--dir", data)
	if err != nil || !strings.Contains(out, `"notes"`) {
		t.Fatalf("collection missing after up: %v %s", err, out)
	}
}
