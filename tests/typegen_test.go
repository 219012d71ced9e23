package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// typegenUsage is client code written against the generated types: it
// must compile, and each @ts-expect-error line must be an error, which
// proves collection() is typed by the schema rather than by any.
const typegenUsage = `import PocketBase from 'pocketbase'
import { Collections, type TypedPocketBase, type PostsRecord, type UsersRecord } from './types'

export async function use(): Promise<string> {
	const pb = new PocketBase('http://127.0.0.1:8090') as TypedPocketBase
	const post: PostsRecord = await pb.collection('posts').getOne('id')
	const title: string = post.title.toUpperCase()
	const n: number = post.views + post.count
	const tags: Array<'a' | 'b' | 'c'> = post.tags
	const status: 'draft' | 'live' | '' = post.status
	const page = await pb.collection(Collections.Posts).getList(1, 20)
	const first: PostsRecord | undefined = page.items[0]
	const user: UsersRecord = await pb.collection('users').getOne('id')
	const verified: boolean = user.verified
	const other = await pb.collection('anything').getOne<{ x: number }>('id')
	// @ts-expect-error: no such field
	post.nope
	// @ts-expect-error: a number is not a string
	const wrong: string = post.views
	// @ts-expect-error: secrets are not part of the record type
	user.password
	// @ts-expect-error: not a value of the select
	const bad: typeof post.status = 'archived'
	return title + n + tags + status + first?.id + verified + other.x + wrong + bad + post.secret
}
`

// TestTypeScriptTypes generates the TypeScript declarations for a schema
// and compiles client code using them, with the real pocketbase package
// types, under tsc --strict.
func TestTypeScriptTypes(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: compiling the generated TypeScript needs Node.js and tests/sdk's typescript")
	}
	sdk, err := filepath.Abs("sdk")
	if err != nil {
		t.Fatal(err)
	}
	tsc := filepath.Join(sdk, "node_modules", ".bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatal("typescript missing in tests/sdk/node_modules and npm is not installed")
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = sdk
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	s := newServer(t, sqliteEngine())
	openAPISchema(s)
	src := s.app.TypeScript()
	for _, leak := range []string{"tokenKey", "password:"} {
		if strings.Contains(src, leak) {
			t.Errorf("generated types mention %s:\n%s", leak, src)
		}
	}
	// The files live under tests/sdk so 'pocketbase' resolves from its
	// node_modules.
	dir, err := os.MkdirTemp(sdk, "typegen-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "types.ts"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "use.ts"), []byte(typegenUsage), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tsc, "--noEmit", "--strict", "--target", "es2022", "--module", "esnext",
		"--moduleResolution", "bundler", "--skipLibCheck", "false",
		filepath.Join(dir, "types.ts"), filepath.Join(dir, "use.ts"))
	cmd.Dir = sdk
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc: %v\n%s\n--- types.ts:\n%s", err, out, src)
	}
}
