package api

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// LabelCredentials marks the Secrets (in the API server's namespace) that hold API access keys.
const LabelCredentials = "sparkplace.io/api-credentials"

// Keys of a credentials Secret's data.
const (
	secretAccessKeyID     = "accessKeyId"
	secretSecretAccessKey = "secretAccessKey"
	secretUsername        = "username"
	secretGroups          = "groups" // comma-separated
	secretARN             = "arn"    // optional: the IAM identity recorded as createdBy
)

// maxIdentityARN bounds an ARN recorded as createdBy (the JobRun CRD's bound on the field).
const maxIdentityARN = 256

// SecretKeys is the key table held in Kubernetes Secrets labelled sparkplace.io/api-credentials=true: each
// maps an access key to the Kubernetes user (and groups) the API acts as. Changes apply without a restart.
type SecretKeys struct {
	log  *slog.Logger
	mu   sync.RWMutex
	keys map[string]Credential
}

// Lookup implements KeyStore.
func (s *SecretKeys) Lookup(id string) (Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.keys[id]
	return c, ok
}

// WatchSecretKeys starts watching the credentials Secrets of namespace and returns once the first list is in.
func WatchSecretKeys(ctx context.Context, cs kubernetes.Interface, namespace string, log *slog.Logger) (*SecretKeys, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelCredentials + "=true" }))
	inf := factory.Core().V1().Secrets()
	s := &SecretKeys{log: log, keys: map[string]Credential{}}
	lister := inf.Lister().Secrets(namespace)
	rebuild := func(any) { s.rebuild(lister) }
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: rebuild, UpdateFunc: func(_, o any) { rebuild(o) }, DeleteFunc: rebuild,
	}); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("listing credentials Secrets in %s (%v): %w", namespace, typ, ctx.Err())
		}
	}
	rebuild(nil)
	return s, nil
}

func (s *SecretKeys) rebuild(lister corev1listers.SecretNamespaceLister) {
	secrets, err := lister.List(labels.Everything())
	if err != nil {
		s.log.Error("listing credentials Secrets", "err", err)
		return
	}
	keys := map[string]Credential{}
	dup := map[string]bool{}
	for _, sec := range secrets {
		id, secret, user := string(sec.Data[secretAccessKeyID]), string(sec.Data[secretSecretAccessKey]), string(sec.Data[secretUsername])
		if id == "" || secret == "" || user == "" {
			s.log.Error("credentials Secret ignored: it needs accessKeyId, secretAccessKey and username", "secret", sec.Name)
			continue
		}
		if _, taken := keys[id]; taken {
			// Two Secrets claiming one key: neither is trusted.
			dup[id] = true
			s.log.Error("access key in more than one credentials Secret: refused until only one holds it", "accessKeyId", id, "secret", sec.Name)
			continue
		}
		var groups []string
		for _, g := range strings.Split(string(sec.Data[secretGroups]), ",") {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
		if strings.HasPrefix(user, "system:") || slices.Contains(groups, "system:masters") {
			// A key acting as a control-plane identity would make the API a path to cluster-admin.
			s.log.Error("credentials Secret ignored: it maps to a system: user or the system:masters group", "secret", sec.Name, "user", user)
			continue
		}
		arn := string(sec.Data[secretARN])
		if arn != "" && (!identityARN.MatchString(arn) || len(arn) > maxIdentityARN) {
			s.log.Error("credentials Secret ignored: its arn is not an IAM or STS identity ARN of at most 256 characters", "secret", sec.Name, "arn", arn)
			continue
		}
		keys[id] = Credential{SecretAccessKey: secret, Caller: Caller{AccessKeyID: id, User: user, Groups: groups, ARN: arn}}
	}
	for id := range dup {
		delete(keys, id)
	}
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}
