package api

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Impersonator makes Kubernetes clients that act as API callers: the server's own credentials with the
// caller's user and groups as impersonation headers, so Kubernetes RBAC on JobRuns and VirtualClusters
// decides what each caller may do.
type Impersonator struct {
	base   *rest.Config
	scheme *runtime.Scheme
	mapper meta.RESTMapper
}

// NewImpersonator shares one REST mapper (discovery) between every caller's client.
func NewImpersonator(cfg *rest.Config, scheme *runtime.Scheme) (*Impersonator, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return &Impersonator{base: cfg, scheme: scheme, mapper: mapper}, nil
}

// ClientFor returns a client acting as caller.
func (i *Impersonator) ClientFor(c Caller) (client.Client, error) {
	cfg := rest.CopyConfig(i.base)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: c.User, Groups: c.Groups}
	// client-go shares the TLS transport between configs that differ only in impersonation.
	return client.New(cfg, client.Options{Scheme: i.scheme, Mapper: i.mapper})
}
