package podtemplate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// DefaultMaxBytes bounds a template: real ones are a few KiB, and the template is stored in the job run and a
// ConfigMap.
const DefaultMaxBytes = 128 << 10

// S3API is the part of aws-sdk-go-v2's S3 client a Fetcher uses.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Fetcher reads pod templates for one submitter. Each source is read with the submitter's own access: S3 with
// its AWS credential chain, ConfigMaps with the caller's Kubernetes client, files from Dir only.
type Fetcher struct {
	// S3 fetches s3:// (and s3a://, s3n://) templates. Nil refuses them.
	S3 S3API
	// Dir is the only directory local paths (and file:// URLs) may name, symbolic links included. Empty refuses
	// local paths.
	Dir string
	// MaxBytes bounds a template. Defaults to DefaultMaxBytes.
	MaxBytes int64
	// S3Timeout bounds one S3 read, so a submission never hangs on S3. Defaults to DefaultS3Timeout.
	S3Timeout time.Duration
}

// DefaultS3Timeout is Fetcher.S3Timeout's default.
const DefaultS3Timeout = 30 * time.Second

// InvalidError is a reference that cannot be fetched as written: a bad or refused reference, a template that
// is missing, too large or not readable with the submitter's access. Other errors are the source's failures.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

func invalidf(format string, args ...any) error {
	return &InvalidError{Err: fmt.Errorf(format, args...)}
}

// Fetch reads the template ref names. namespace is the job run's: a configmap:// reference reads a ConfigMap
// there, with c (the caller's client; nil refuses configmap:// references).
//
// References: s3://bucket/key; configmap://name/key, or configmap://name for a ConfigMap with one key (a
// namespace may be given as configmap://namespace/name/key, and must then be the job run's); a path or
// file:///path inside Dir (relative paths are taken from Dir).
func (f *Fetcher) Fetch(ctx context.Context, ref string, namespace string, c client.Reader) ([]byte, error) {
	scheme, rest, hasScheme := strings.Cut(ref, "://")
	if !hasScheme {
		scheme, rest = "", ref
	}
	switch strings.ToLower(scheme) {
	case "s3", "s3a", "s3n":
		return f.fromS3(ctx, rest)
	case "configmap":
		return f.fromConfigMap(ctx, rest, namespace, c)
	case "file", "":
		return f.fromFile(rest)
	}
	return nil, invalidf("unsupported scheme %s://: use s3://bucket/key, configmap://name/key or a path in the submitter's pod template directory", scheme)
}

func (f *Fetcher) maxBytes() int64 {
	if f.MaxBytes > 0 {
		return f.MaxBytes
	}
	return DefaultMaxBytes
}

func (f *Fetcher) tooLarge() error {
	return invalidf("the template is larger than %d bytes", f.maxBytes())
}

// readBounded reads at most maxBytes, and refuses more.
func (f *Fetcher) readBounded(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, f.maxBytes()+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > f.maxBytes() {
		return nil, f.tooLarge()
	}
	return data, nil
}

func (f *Fetcher) fromS3(ctx context.Context, rest string) ([]byte, error) {
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" || key == "" || strings.HasSuffix(key, "/") {
		return nil, invalidf("an S3 template is s3://bucket/key")
	}
	// The bucket becomes part of a host name: only S3's bucket names, so a reference cannot aim elsewhere.
	if !bucketName.MatchString(bucket) {
		return nil, invalidf("%q is not an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)", bucket)
	}
	if f.S3 == nil {
		return nil, invalidf("this submitter has no S3 access configured")
	}
	timeout := f.S3Timeout
	if timeout <= 0 {
		timeout = DefaultS3Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := f.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			switch ae.ErrorCode() {
			case "NoSuchKey", "NoSuchBucket", "NotFound":
				return nil, invalidf("s3://%s/%s does not exist", bucket, key)
			case "AccessDenied", "Forbidden", "AllAccessDisabled", "InvalidObjectState", "PermanentRedirect":
				return nil, invalidf("s3://%s/%s cannot be read with the submitter's AWS credentials: %s", bucket, key, ae.ErrorMessage())
			}
		}
		return nil, fmt.Errorf("reading s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	if out.ContentLength != nil && *out.ContentLength > f.maxBytes() {
		return nil, f.tooLarge()
	}
	data, err := f.readBounded(out.Body)
	if err != nil && !IsInvalid(err) {
		return nil, fmt.Errorf("reading s3://%s/%s: %w", bucket, key, err)
	}
	return data, err
}

func (f *Fetcher) fromConfigMap(ctx context.Context, rest, namespace string, c client.Reader) ([]byte, error) {
	parts := strings.Split(rest, "/")
	ns := namespace
	if len(parts) == 3 {
		// A namespace is accepted only to be explicit: a run reads its own namespace's ConfigMaps, never another's.
		if parts[0] != namespace {
			return nil, invalidf("configmap://%s names namespace %s: a job run may only read ConfigMaps of its own namespace %s", rest, parts[0], namespace)
		}
		parts = parts[1:]
	}
	if len(parts) > 2 || parts[0] == "" || (len(parts) == 2 && parts[1] == "") {
		return nil, invalidf("a ConfigMap template is configmap://name/key (or configmap://name when the ConfigMap has one key)")
	}
	name := parts[0]
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return nil, invalidf("ConfigMap name %q: %s", name, strings.Join(errs, "; "))
	}
	if c == nil {
		return nil, invalidf("configmap:// templates need a cluster (not available in a dry run)")
	}
	var cm corev1.ConfigMap
	switch err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); {
	case apierrors.IsNotFound(err):
		return nil, invalidf("ConfigMap %s does not exist in namespace %s", name, ns)
	case apierrors.IsForbidden(err):
		return nil, invalidf("you may not read ConfigMap %s in namespace %s", name, ns)
	case err != nil:
		return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", ns, name, err)
	}
	var key string
	switch {
	case len(parts) == 2:
		key = parts[1]
	case len(cm.Data)+len(cm.BinaryData) == 1:
		for k := range cm.Data {
			key = k
		}
		for k := range cm.BinaryData {
			key = k
		}
	default:
		return nil, invalidf("ConfigMap %s has %d keys: name one, configmap://%s/<key>", name, len(cm.Data)+len(cm.BinaryData), name)
	}
	var data []byte
	if s, ok := cm.Data[key]; ok {
		data = []byte(s)
	} else if b, ok := cm.BinaryData[key]; ok {
		data = b
	} else {
		return nil, invalidf("ConfigMap %s has no key %q", name, key)
	}
	if int64(len(data)) > f.maxBytes() {
		return nil, f.tooLarge()
	}
	return data, nil
}

func (f *Fetcher) fromFile(path string) ([]byte, error) {
	if f.Dir == "" {
		return nil, invalidf("local pod templates are not accepted by this submitter (it has no pod template directory): use s3:// or configmap://")
	}
	if path == "" {
		return nil, invalidf("empty path")
	}
	rel := path
	if filepath.IsAbs(path) {
		var err error
		if rel, err = filepath.Rel(f.Dir, filepath.Clean(path)); err != nil || !filepath.IsLocal(rel) {
			return nil, invalidf("%s is outside the submitter's pod template directory %s", path, f.Dir)
		}
	}
	// os.Root refuses "..", and symbolic links, that leave the directory.
	root, err := os.OpenRoot(f.Dir)
	if err != nil {
		return nil, fmt.Errorf("pod template directory: %w", err)
	}
	defer root.Close()
	file, err := root.Open(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, invalidf("%s does not exist in the submitter's pod template directory %s", path, f.Dir)
	case err != nil:
		return nil, invalidf("%s cannot be read from the submitter's pod template directory %s: %v", path, f.Dir, stripPath(err))
	}
	defer file.Close()
	if st, err := file.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, invalidf("%s is not a file", path)
	}
	data, err := f.readBounded(file)
	if err != nil && !IsInvalid(err) {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, err
}

// stripPath keeps an os error's reason without repeating the path.
func stripPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// IsInvalid reports whether err is an *InvalidError.
func IsInvalid(err error) bool {
	var inv *InvalidError
	return errors.As(err, &inv)
}

// NewS3Client is an S3 client with the AWS SDK's default credential chain (environment, shared files, IRSA's
// web identity token in a cluster, the instance role) in region. endpoint, when set, is an S3-compatible
// server (MinIO, a test's fake), addressed path-style; AWS_ENDPOINT_URL_S3 works too.
func NewS3Client(ctx context.Context, region, endpoint string) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true
		}
	}), nil
}
