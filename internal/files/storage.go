// Package files stores uploaded files — on local disk or in any
// S3-compatible service — and makes image thumbnails. It knows nothing
// about records or rules; the records and api packages decide what may
// be stored and who may read it.
package files

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// Object is an open stored file. It is an io.ReadSeeker so HTTP range
// requests can be served from it directly.
type Object interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}

// Storage is where file bytes live. Keys are slash-separated paths built
// by Key from validated parts only.
type Storage interface {
	// Put streams r to key; a failed or partial upload leaves nothing.
	Put(ctx context.Context, key string, r io.Reader, contentType string) (size int64, err error)
	// Open returns the object at key, or ErrNotFound.
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every key under prefix (a record's folder).
	DeletePrefix(ctx context.Context, prefix string) error
	// List calls fn for every key under prefix ("" for all) with its last
	// modification time, including the temporaries of unfinished uploads.
	List(ctx context.Context, prefix string, fn func(key string, modTime time.Time) error) error
}

// IsTemp reports whether key is an unfinished upload's temporary file.
func IsTemp(key string) bool { return strings.HasPrefix(path.Base(key), ".upload-") }

// ErrNotFound is returned by Open for a missing key.
var ErrNotFound = errors.New("file not found")

// Key is the storage key of a record's file.
func Key(collectionID, recordID, name string) string {
	return collectionID + "/" + recordID + "/" + name
}

// ThumbKey is the storage key of a cached thumbnail.
func ThumbKey(collectionID, recordID, name, size string) string {
	return collectionID + "/" + recordID + "/thumbs_" + name + "/" + size + "_" + name
}

// Local stores files under a directory.
type Local struct{ Dir string }

func (l Local) path(key string) (string, error) {
	clean := path.Clean("/" + key)
	if clean != "/"+key || strings.Contains(key, "\\") {
		return "", errors.New("invalid storage key")
	}
	return filepath.Join(l.Dir, filepath.FromSlash(clean)), nil
}

// Put implements Storage: write to a temporary file in the same folder,
// fsync, then rename, so a crash never leaves a half file under the key.
func (l Local) Put(ctx context.Context, key string, r io.Reader, _ string) (int64, error) {
	p, err := l.path(key)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".upload-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, ctxReader{ctx, r})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	// The rename is durable only once the directory entry is on disk: an
	// acknowledged upload must survive a power loss, not just a crash.
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

// ctxReader stops a long copy when the request is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read implements io.Reader, stopping once the context ends.
func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type localObject struct {
	*os.File
	fi os.FileInfo
}

// Size implements Object.
func (o localObject) Size() int64 { return o.fi.Size() }

// ModTime implements Object.
func (o localObject) ModTime() time.Time { return o.fi.ModTime() }

// Open implements Storage.
func (l Local) Open(_ context.Context, key string) (Object, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, ErrNotFound
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		f.Close()
		return nil, ErrNotFound
	}
	return localObject{f, fi}, nil
}

// Delete implements Storage.
func (l Local) Delete(_ context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// DeletePrefix implements Storage.
func (l Local) DeletePrefix(_ context.Context, prefix string) error {
	p, err := l.path(strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return err
	}
	return os.RemoveAll(p)
}

// List implements Storage, walking the directory tree.
func (l Local) List(ctx context.Context, prefix string, fn func(key string, modTime time.Time) error) error {
	root := l.Dir
	if prefix != "" {
		p, err := l.path(strings.TrimSuffix(prefix, "/"))
		if err != nil {
			return err
		}
		root = p
	}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		rel, err := filepath.Rel(l.Dir, p)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), info.ModTime())
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// SafeName turns a client-supplied filename into a stored name: only
// [A-Za-z0-9_.-], no leading dots, bounded length, and a random suffix so
// two uploads never collide and names cannot be guessed.
func SafeName(original string) string {
	base := original
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	ext := strings.ToLower(filepath.Ext(base))
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	clean := func(s string, max int) string {
		var b strings.Builder
		for _, r := range s {
			switch {
			case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)), r == '_', r == '-':
				b.WriteRune(r)
			default:
				b.WriteByte('_')
			}
			if b.Len() >= max {
				break
			}
		}
		return strings.Trim(b.String(), "_.-")
	}
	stem = clean(stem, 80)
	if stem == "" {
		stem = "file"
	}
	ext = clean(strings.TrimPrefix(ext, "."), 10)
	suffix := randomSuffix(10)
	if ext == "" {
		return stem + "_" + suffix
	}
	return stem + "_" + suffix + "." + ext
}

func randomSuffix(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// ValidName reports whether name could have come from SafeName, so a
// request path can never address anything else in storage.
func ValidName(name string) bool {
	if name == "" || len(name) > 128 || strings.HasPrefix(name, ".") {
		return false
	}
	for _, r := range name {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
