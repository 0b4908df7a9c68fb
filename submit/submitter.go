package submit

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/submit/podtemplate"
)

// Options configure a Submitter.
type Options struct {
	// Client talks to the cluster as the caller, so Kubernetes RBAC on JobRuns and VirtualClusters decides
	// what the caller may do. Required, except for DryRun.
	Client client.Client
	// Directory finds a virtual cluster's namespace from its id and reads namespace labels; the API server
	// reads them with its own identity (tenants may not list every namespace). Defaults to Client.
	Directory client.Reader
	// Namespace is where a caller who may not list virtual clusters cluster-wide looks for one (the CLI: the
	// kubeconfig context's namespace). Optional.
	Namespace string
	// ProtectedNamespaces can never back a virtual cluster (sparkplace's own namespace, besides kube-*).
	ProtectedNamespaces []string
	// Clock stamps submissions and state changes. Defaults to the real clock.
	Clock clock.PassiveClock
	// Random supplies ids. Defaults to crypto/rand.
	Random io.Reader
	// Releases resolves releaseLabel to an image.
	Releases ReleaseTable
	// Region and AccountID appear in ARNs. Default to us-east-1 and 000000000000.
	Region    string
	AccountID string
	// ClusterName is the virtual clusters' containerProvider id (EMR: the EKS cluster). Defaults to "sparkplace".
	ClusterName string
	// SparkUser is the driver's SPARK_USER. Defaults to "spark".
	SparkUser string
	// CreatedBy is recorded on job runs. Optional.
	CreatedBy string
	// PodTemplates fetches the pod templates runs name (spark.kubernetes.{driver,executor}.podTemplateFile):
	// s3:// with its S3 client, configmap:// from the run's namespace with Client, local paths from its
	// directory. Its zero value refuses s3:// and local templates.
	PodTemplates podtemplate.Fetcher
}

// Submitter creates and tracks job runs and virtual clusters. All state lives in the cluster.
type Submitter struct {
	opts Options
}

// New returns a Submitter with defaults filled in.
func New(opts Options) *Submitter {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Random == nil {
		opts.Random = rand.Reader
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccountID == "" {
		opts.AccountID = "000000000000"
	}
	if opts.ClusterName == "" {
		opts.ClusterName = "sparkplace"
	}
	if opts.Directory == nil && opts.Client != nil {
		opts.Directory = opts.Client
	}
	if opts.Releases.Region == "" {
		opts.Releases.Region = opts.Region
	}
	return &Submitter{opts: opts}
}

func (s *Submitter) client() (client.Client, error) {
	if s.opts.Client == nil {
		return nil, fmt.Errorf("no Kubernetes client configured")
	}
	return s.opts.Client, nil
}

// Options returns the submitter's options with defaults filled in.
func (s *Submitter) Options() Options { return s.opts }

// PlanOptions are the submitter's settings as the controller plans with them (without Now and Random,
// which the controller takes from each run).
func (s *Submitter) PlanOptions() PlanOptions {
	opts := s.planOptions()
	opts.Now, opts.Random = time.Time{}, nil
	return opts
}

func (s *Submitter) planOptions() PlanOptions {
	return PlanOptions{
		Releases:  s.opts.Releases,
		Now:       s.opts.Clock.Now(),
		Random:    s.opts.Random,
		Region:    s.opts.Region,
		AccountID: s.opts.AccountID,
		SparkUser: s.opts.SparkUser,
		CreatedBy: s.opts.CreatedBy,
	}
}

// randomID returns n characters of [0-9a-z], the alphabet of EMR's ids.
func (s *Submitter) randomID(n int) (string, error) {
	raw, err := randomBytes(s.opts.Random, n)
	if err != nil {
		return "", err
	}
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b strings.Builder
	for _, c := range raw {
		// 252 = 7×36: the modulo bias is below 2%, acceptable for ids that only need to be unique.
		b.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return b.String(), nil
}

// JobRunID derives the id from the virtual cluster and the client token, so the JobRun's name is the
// idempotency key: a second StartJobRun with the same token collides on create instead of racing.
func JobRunID(virtualClusterID, clientToken string) string {
	sum := sha256.Sum256([]byte(virtualClusterID + "\x00" + clientToken))
	id := new(big.Int).SetBytes(sum[:]).Text(36)
	for len(id) < jobRunIDLength {
		id = "0" + id
	}
	return id[:jobRunIDLength]
}

const (
	jobRunIDLength         = 19 // like EMR's "000000030n2vgvcjb5a"
	virtualClusterIDLength = 25 // like EMR's "awlrqupqxuy81jws3c0q2ik81"
)
