package certs

import (
	"errors"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// InjectCAAnnotation on the MutatingWebhookConfiguration tells cert-manager's cainjector to copy the CA of
// the named Certificate ("namespace/name") into every webhook's caBundle.
const InjectCAAnnotation = cmv1.WantInjectAnnotation

// CertManagerOptions names the objects of the cert-manager mode.
type CertManagerOptions struct {
	// Namespace holds the Issuers, Certificates and Secrets. Required.
	Namespace string
	// ServiceName is the webhook's Service; the serving certificate carries its DNS names. Required.
	ServiceName string
	// SecretName is the Secret cert-manager writes the serving certificate to and the webhook mounts.
	// Defaults to "sparkplace-webhook-tls".
	SecretName string
	// CALifetime is the CA certificate's duration. Defaults to 365 days; cert-manager renews it at 2/3.
	CALifetime time.Duration
	// ServingLifetime is the serving certificate's duration. Defaults to 90 days; cert-manager renews it
	// at 2/3.
	ServingLifetime time.Duration
}

// Names of the cert-manager objects, used by the webhook configuration's inject annotation.
const (
	certManagerSelfSignedIssuer = "sparkplace-selfsigned"
	certManagerCA               = "sparkplace-ca"
	certManagerServing          = "sparkplace-webhook"
)

// CertManagerObjects returns the cert-manager objects that give the webhook its certificate: a selfSigned
// Issuer that signs a CA Certificate, a CA Issuer backed by that CA's Secret, and the serving Certificate it
// signs. A private CA per install, rather than a selfSigned serving certificate, lets the serving
// certificate rotate without changing the caBundle. The cert-manager overlay in manifests/ holds exactly
// these objects; a test there checks it. Also returns the value of [InjectCAAnnotation].
func CertManagerObjects(opts CertManagerOptions) ([]client.Object, string, error) {
	if opts.Namespace == "" || opts.ServiceName == "" {
		return nil, "", errors.New("namespace and service name are required")
	}
	if opts.SecretName == "" {
		opts.SecretName = "sparkplace-webhook-tls"
	}
	if opts.CALifetime == 0 {
		opts.CALifetime = 365 * 24 * time.Hour
	}
	if opts.ServingLifetime == 0 {
		opts.ServingLifetime = 90 * 24 * time.Hour
	}
	svc, ns := opts.ServiceName, opts.Namespace
	renewAt := int32(100 / 3) // renew with a third of the lifetime left, like the self-managed mode
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/name": "sparkplace"}}
	}
	ecdsa := &cmv1.CertificatePrivateKey{Algorithm: cmv1.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmv1.RotationPolicyAlways}
	issuerRef := func(name string) cmmeta.IssuerReference {
		return cmmeta.IssuerReference{Name: name, Kind: cmv1.IssuerKind, Group: "cert-manager.io"}
	}
	objs := []client.Object{
		&cmv1.Issuer{
			TypeMeta:   metav1.TypeMeta{APIVersion: cmv1.SchemeGroupVersion.String(), Kind: cmv1.IssuerKind},
			ObjectMeta: meta(certManagerSelfSignedIssuer),
			Spec:       cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{SelfSigned: &cmv1.SelfSignedIssuer{}}},
		},
		&cmv1.Certificate{
			TypeMeta:   metav1.TypeMeta{APIVersion: cmv1.SchemeGroupVersion.String(), Kind: cmv1.CertificateKind},
			ObjectMeta: meta(certManagerCA),
			Spec: cmv1.CertificateSpec{
				IsCA:                  true,
				CommonName:            "sparkplace-ca",
				SecretName:            certManagerCA,
				Duration:              &metav1.Duration{Duration: opts.CALifetime},
				RenewBeforePercentage: &renewAt,
				PrivateKey:            ecdsa,
				IssuerRef:             issuerRef(certManagerSelfSignedIssuer),
				Usages:                []cmv1.KeyUsage{cmv1.UsageCertSign, cmv1.UsageCRLSign, cmv1.UsageDigitalSignature},
			},
		},
		&cmv1.Issuer{
			TypeMeta:   metav1.TypeMeta{APIVersion: cmv1.SchemeGroupVersion.String(), Kind: cmv1.IssuerKind},
			ObjectMeta: meta(certManagerCA),
			Spec:       cmv1.IssuerSpec{IssuerConfig: cmv1.IssuerConfig{CA: &cmv1.CAIssuer{SecretName: certManagerCA}}},
		},
		&cmv1.Certificate{
			TypeMeta:   metav1.TypeMeta{APIVersion: cmv1.SchemeGroupVersion.String(), Kind: cmv1.CertificateKind},
			ObjectMeta: meta(certManagerServing),
			Spec: cmv1.CertificateSpec{
				CommonName:            svc + "." + ns + ".svc",
				DNSNames:              []string{svc + "." + ns + ".svc", svc, svc + "." + ns, svc + "." + ns + ".svc.cluster.local"},
				SecretName:            opts.SecretName,
				Duration:              &metav1.Duration{Duration: opts.ServingLifetime},
				RenewBeforePercentage: &renewAt,
				PrivateKey:            ecdsa,
				IssuerRef:             issuerRef(certManagerCA),
				Usages:                []cmv1.KeyUsage{cmv1.UsageDigitalSignature, cmv1.UsageServerAuth},
			},
		},
	}
	return objs, ns + "/" + certManagerServing, nil
}
