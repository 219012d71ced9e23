package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Options locate a bucket in any S3-compatible service.
type S3Options struct {
	Endpoint  string // host[:port] or URL, e.g. https://s3.eu-west-1.amazonaws.com
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
	PathStyle bool // required by MinIO-style services without bucket DNS
	Prefix    string
}

// S3 stores files in a bucket.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
}

// NewS3 connects to the service and checks the bucket exists.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	endpoint, secure := o.Endpoint, true
	if u, err := url.Parse(o.Endpoint); err == nil && u.Host != "" {
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	lookup := minio.BucketLookupAuto
	if o.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""), Secure: secure, Region: o.Region, BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	ok, err := c.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: cannot reach bucket %q at %s: %w", o.Bucket, endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("s3: bucket %q does not exist at %s", o.Bucket, endpoint)
	}
	return &S3{c: c, bucket: o.Bucket, prefix: strings.Trim(o.Prefix, "/")}, nil
}

func (s *S3) key(k string) string {
	if s.prefix == "" {
		return k
	}
	return s.prefix + "/" + k
}

// Put implements Storage. The size is unknown up front, so the client
// uploads in fixed-size multipart chunks: memory stays bounded whatever
// the file size.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error) {
	info, err := s.c.PutObject(ctx, s.bucket, s.key(key), r, -1, minio.PutObjectOptions{
		ContentType: contentType, PartSize: 16 << 20, DisableContentSha256: true,
	})
	if err != nil {
		return 0, err
	}
	return info.Size, nil
}

// s3Object is minio's object reader, which is lazy: Seek moves an
// offset and the next Read issues a ranged GET, so serving a byte range
// never downloads the whole object.
type s3Object struct {
	*minio.Object
	size int64
	mod  time.Time
}

// Size implements Object.
func (o s3Object) Size() int64 { return o.size }

// ModTime implements Object.
func (o s3Object) ModTime() time.Time { return o.mod }

// Open implements Storage.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	obj, err := s.c.GetObject(ctx, s.bucket, s.key(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		if r := minio.ToErrorResponse(err); r.Code == "NoSuchKey" || r.StatusCode == 404 {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return s3Object{obj, st.Size, st.LastModified}, nil
}

// Delete implements Storage.
func (s *S3) Delete(ctx context.Context, key string) error {
	return s.c.RemoveObject(ctx, s.bucket, s.key(key), minio.RemoveObjectOptions{})
}

// DeletePrefix implements Storage.
func (s *S3) DeletePrefix(ctx context.Context, prefix string) error {
	var errs []error
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		if err := s.c.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// List implements Storage. Multipart uploads a crash left unfinished are
// not objects and are not listed: the bucket's lifecycle rule
// (AbortIncompleteMultipartUpload) is the standard way to expire them.
func (s *S3) List(ctx context.Context, prefix string, fn func(key string, modTime time.Time) error) error {
	strip := func(k string) string {
		if s.prefix == "" {
			return k
		}
		return strings.TrimPrefix(k, s.prefix+"/")
	}
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		if err := fn(strip(obj.Key), obj.LastModified); err != nil {
			return err
		}
	}
	return nil
}
