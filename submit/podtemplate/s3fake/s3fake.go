// Package s3fake is an S3-compatible server for tests: gofakes3 in process, over HTTP, which remembers the
// access key each request was signed with and can deny objects as a bucket policy would.
package s3fake

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Server is a running fake. Its URL takes path-style requests (http://host/bucket/key).
type Server struct {
	URL     string
	backend *s3mem.Backend
	mu      sync.Mutex
	keys    []string
	deny    map[string]bool // "bucket/key"
}

var credentialPattern = regexp.MustCompile(`Credential=([^/]+)/`)

// New serves objects ("bucket/key" → content) until the test ends.
func New(t testing.TB, objects map[string]string) *Server {
	t.Helper()
	f := &Server{backend: s3mem.New(), deny: map[string]bool{}}
	for path, content := range objects {
		f.Put(t, path, content)
	}
	faker := gofakes3.New(f.backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if m := credentialPattern.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			f.keys = append(f.keys, m[1])
		}
		denied := f.deny[strings.TrimPrefix(r.URL.Path, "/")]
		f.mu.Unlock()
		if denied {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`))
			return
		}
		faker.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Put stores content at "bucket/key", creating the bucket when needed.
func (f *Server) Put(t testing.TB, path, content string) {
	t.Helper()
	bucket, key, _ := strings.Cut(path, "/")
	if ok, _ := f.backend.BucketExists(bucket); !ok {
		if err := f.backend.CreateBucket(bucket); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.backend.PutObject(bucket, key, nil, strings.NewReader(content), int64(len(content)), nil); err != nil {
		t.Fatal(err)
	}
}

// Deny answers AccessDenied for "bucket/key".
func (f *Server) Deny(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deny[path] = true
}

// AccessKeys are the access key ids the requests so far were signed with.
func (f *Server) AccessKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

// Client is an aws-sdk-go-v2 S3 client of the fake, signing with accessKey.
func (f *Server) Client(accessKey string) *s3.Client {
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, "fake-secret", ""),
	})
}
