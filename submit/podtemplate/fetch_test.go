package podtemplate

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sparkplace/sparkplace/submit/podtemplate/s3fake"
)

const template = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: spark-kubernetes-executor\n"

func TestFetch(t *testing.T) {
	// The template directory, a secret beside it and a link out of it.
	base := t.TempDir()
	dir := filepath.Join(base, "templates")
	for path, content := range map[string]string{
		"templates/exec.yaml": template, "templates/teams/sales.yaml": template,
		"secret.yaml": "kind: Secret\n", "templates/huge.yaml": strings.Repeat("#", 2000),
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(base, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(base, "secret.yaml"), filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	// A mounted ConfigMap's layout: each key a link through ..data to a timestamped directory.
	if err := os.MkdirAll(filepath.Join(dir, "..2026_11_30_08_00_00.1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "..2026_11_30_08_00_00.1", "mounted.yaml"), []byte(template), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"..data": "..2026_11_30_08_00_00.1", "mounted.yaml": "..data/mounted.yaml"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	s3 := s3fake.New(t, map[string]string{"acme/exec.yaml": template, "acme/huge.yaml": strings.Repeat("#", 2000), "acme/denied.yaml": template})
	s3.Deny("acme/denied.yaml")
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cm := func(ns, name string, data map[string]string) client.Object {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	}
	cluster := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		cm("sales", "templates", map[string]string{"exec.yaml": template, "driver.yaml": template}),
		cm("sales", "exec-template", map[string]string{"pod.yaml": template}),
		cm("marketing", "exec-template-m", map[string]string{"pod.yaml": template}),
		cm("sales", "huge", map[string]string{"pod.yaml": strings.Repeat("#", 2000)}),
	).Build()
	f := &Fetcher{S3: s3.Client("AKIASUBMITTER"), Dir: dir, MaxBytes: 1024}

	cases := map[string]struct {
		ref     string
		fetcher *Fetcher
		wantErr string // "" means the template is read
	}{
		"s3":                                  {ref: "s3://acme/exec.yaml"},
		"s3a, Hadoop's scheme":                {ref: "s3a://acme/exec.yaml"},
		"s3: missing":                         {ref: "s3://acme/missing.yaml", wantErr: "s3://acme/missing.yaml does not exist"},
		"s3: missing bucket":                  {ref: "s3://nobody/exec.yaml", wantErr: "does not exist"},
		"s3: denied to the submitter":         {ref: "s3://acme/denied.yaml", wantErr: "cannot be read with the submitter's AWS credentials"},
		"s3: too large":                       {ref: "s3://acme/huge.yaml", wantErr: "larger than 1024 bytes"},
		"s3: no key":                          {ref: "s3://acme", wantErr: "s3://bucket/key"},
		"s3: a host for a bucket":             {ref: "s3://user@169.254.169.254:80/latest", wantErr: "is not an S3 bucket name"},
		"s3: no S3 configured":                {ref: "s3://acme/exec.yaml", fetcher: &Fetcher{}, wantErr: "no S3 access"},
		"configmap: name and key":             {ref: "configmap://templates/exec.yaml"},
		"configmap: one key":                  {ref: "configmap://exec-template"},
		"configmap: own namespace named":      {ref: "configmap://sales/templates/driver.yaml"},
		"configmap: another namespace named":  {ref: "configmap://marketing/exec-template-m/pod.yaml", wantErr: "may only read ConfigMaps of its own namespace sales"},
		"configmap: another namespace's name": {ref: "configmap://exec-template-m", wantErr: "ConfigMap exec-template-m does not exist in namespace sales"},
		"configmap: two keys, none named":     {ref: "configmap://templates", wantErr: "has 2 keys: name one"},
		"configmap: missing key":              {ref: "configmap://templates/executor.yaml", wantErr: `has no key "executor.yaml"`},
		"configmap: too large":                {ref: "configmap://huge", wantErr: "larger than 1024 bytes"},
		"configmap: bad name":                 {ref: "configmap://Templates/x", wantErr: "ConfigMap name"},
		"file: a key of a mounted ConfigMap":  {ref: filepath.Join(dir, "mounted.yaml")},
		"file: relative to the directory":     {ref: "exec.yaml"},
		"file: absolute inside":               {ref: filepath.Join(dir, "teams/sales.yaml")},
		"file: URL inside":                    {ref: "file://" + filepath.Join(dir, "exec.yaml")},
		"file: absolute outside":              {ref: filepath.Join(base, "secret.yaml"), wantErr: "outside the submitter's pod template directory"},
		"file: dot-dot out":                   {ref: "teams/../../secret.yaml", wantErr: "cannot be read from the submitter's pod template directory"},
		"file: absolute dot-dot out":          {ref: dir + "/../secret.yaml", wantErr: "outside the submitter's pod template directory"},
		"file: a link out":                    {ref: "link.yaml", wantErr: "cannot be read from the submitter's pod template directory"},
		"file: /etc/passwd":                   {ref: "/etc/passwd", wantErr: "outside the submitter's pod template directory"},
		"file: a directory":                   {ref: "teams", wantErr: "is not a file"},
		"file: too large":                     {ref: "huge.yaml", wantErr: "larger than 1024 bytes"},
		"file: missing":                       {ref: "nope.yaml", wantErr: "does not exist"},
		"file: no directory configured":       {ref: "exec.yaml", fetcher: &Fetcher{}, wantErr: "not accepted by this submitter"},
		"an unknown scheme":                   {ref: "https://example.com/exec.yaml", wantErr: "unsupported scheme https://"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fetcher := f
			if tc.fetcher != nil {
				fetcher = tc.fetcher
			}
			data, err := fetcher.Fetch(context.Background(), tc.ref, "sales", cluster)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Fetch: %v", err)
			case tc.wantErr == "" && string(data) != template:
				t.Fatalf("Fetch = %q, want the template", data)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			case tc.wantErr != "" && !IsInvalid(err):
				t.Fatalf("err = %v is not an *InvalidError", err)
			}
		})
	}
}

// TestNewS3ClientUsesTheCredentialChain: the client reads the submitter's credentials from the SDK's default
// chain (here its environment part; IRSA's web identity token is another link of the same chain).
func TestNewS3ClientUsesTheCredentialChain(t *testing.T) {
	s3 := s3fake.New(t, map[string]string{"acme/exec.yaml": template})
	home := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIACHAIN0000000000")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
	c, err := NewS3Client(context.Background(), "us-west-2", s3.URL)
	if err != nil {
		t.Fatal(err)
	}
	data, err := (&Fetcher{S3: c}).Fetch(context.Background(), "s3://acme/exec.yaml", "sales", nil)
	if err != nil || string(data) != template {
		t.Fatalf("Fetch = %q, %v", data, err)
	}
	if keys := s3.AccessKeys(); !slices.Equal(keys, []string{"AKIACHAIN0000000000"}) {
		t.Errorf("requests signed with %v, want the chain's AKIACHAIN0000000000", keys)
	}
}

// TestS3ReadsAreBounded: an S3 endpoint that never answers fails the fetch after S3Timeout, as a server-side
// error (not the request's fault), instead of holding the submission.
func TestS3ReadsAreBounded(t *testing.T) {
	stuck := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-stuck }))
	t.Cleanup(func() { close(stuck); srv.Close() })
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIASUBMITTER", "secret", ""), RetryMaxAttempts: 1})
	_, err := (&Fetcher{S3: c, S3Timeout: 200 * time.Millisecond}).Fetch(context.Background(), "s3://acme/exec.yaml", "sales", nil)
	if err == nil || IsInvalid(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error that is not the request's fault", err)
	}
}
