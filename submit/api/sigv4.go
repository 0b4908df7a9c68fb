package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signingName is emr-containers' SigV4 service name.
const signingName = "emr-containers"

// maxSkew is how far a signature's time may be from the server's clock, as AWS allows.
const maxSkew = 5 * time.Minute

// Caller is an authenticated client: the Kubernetes user and groups its access key maps to.
type Caller struct {
	AccessKeyID string
	User        string
	Groups      []string
	// ARN is the IAM identity the key stands for, recorded as createdBy. Defaults to an IAM user ARN named
	// after User (IdentityARN).
	ARN string
}

// identityARN is the service model's RequestIdentityUserArn: what createdBy must look like.
var identityARN = regexp.MustCompile(`^arn:(aws[a-zA-Z0-9-]*):(iam|sts)::(\d{12})?:[\w/+=,.@-]+$`)

// notInIAMName are the characters an IAM user name cannot hold.
var notInIAMName = regexp.MustCompile(`[^\w+=,.@-]`)

// IdentityARN is the caller as the service writes createdBy: its ARN, or else the IAM user ARN
// arn:aws:iam::<accountID>:user/<User> (characters IAM names cannot hold become "-").
func (c Caller) IdentityARN(accountID string) string {
	if c.ARN != "" {
		return c.ARN
	}
	return fmt.Sprintf("arn:aws:iam::%s:user/%s", accountID, notInIAMName.ReplaceAllString(c.User, "-"))
}

// Credential is an access key's secret and whom it stands for.
type Credential struct {
	SecretAccessKey string
	Caller          Caller
}

// KeyStore finds access keys.
type KeyStore interface {
	Lookup(accessKeyID string) (Credential, bool)
}

// StaticKeys is a fixed key table (tests, a single operator).
type StaticKeys map[string]Credential

// Lookup implements KeyStore.
func (k StaticKeys) Lookup(id string) (Credential, bool) {
	c, ok := k[id]
	return c, ok
}

// authError is an authentication failure: the service's error shape, and a reason for the metric.
type authError struct {
	*apiError
	reason string
}

func denied(reason, code, format string, args ...any) *authError {
	return &authError{apiError: &apiError{status: http.StatusForbidden, code: code, message: fmt.Sprintf(format, args...)}, reason: reason}
}

// sigV4 verifies AWS Signature Version 4 as the AWS CLI, the SDKs and Airflow (boto3) sign: the header
// form, with the service's signing name, the configured region and the body's SHA-256.
type sigV4 struct {
	keys   KeyStore
	region string
	now    func() time.Time
	signer *v4.Signer
}

// verify returns the caller of a signed request. body is the request's body, already read.
func (v *sigV4) verify(ctx context.Context, r *http.Request, body []byte) (*Caller, *authError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return nil, denied("missing", "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	algo, rest, _ := strings.Cut(auth, " ")
	if algo != "AWS4-HMAC-SHA256" {
		return nil, denied("malformed", "IncompleteSignatureException", "Unsupported Authorization scheme %q: sign with AWS Signature Version 4 (AWS4-HMAC-SHA256)", algo)
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = val
	}
	scope := strings.Split(fields["Credential"], "/")
	signed := fields["SignedHeaders"]
	if len(scope) != 5 || scope[4] != "aws4_request" || signed == "" || fields["Signature"] == "" {
		return nil, denied("malformed", "IncompleteSignatureException", "Authorization header requires Credential=<key>/<date>/<region>/<service>/aws4_request, SignedHeaders and Signature")
	}
	keyID, day, region, service := scope[0], scope[1], scope[2], scope[3]
	cred, ok := v.keys.Lookup(keyID)
	if !ok {
		return nil, denied("unknown_key", "UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	headers := strings.Split(signed, ";")
	if !slices.Contains(headers, "host") || !slices.Contains(headers, "x-amz-date") {
		return nil, denied("malformed", "IncompleteSignatureException", "SignedHeaders must include host and x-amz-date")
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return nil, denied("malformed", "IncompleteSignatureException", "X-Amz-Date %q is not a basic ISO-8601 time (20060102T150405Z)", r.Header.Get("X-Amz-Date"))
	}
	now := v.now().UTC()
	if skew := now.Sub(at); skew > maxSkew || skew < -maxSkew {
		return nil, denied("expired", "InvalidSignatureException", "Signature expired: %s is now earlier than %s (%s - 5 min.)",
			at.Format("20060102T150405Z"), now.Add(-maxSkew).Format("20060102T150405Z"), now.Format("20060102T150405Z"))
	}
	switch {
	case day != at.Format("20060102"):
		return nil, denied("scope", "InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s'", day, at.Format("20060102"))
	case region != v.region:
		return nil, denied("scope", "InvalidSignatureException", "Credential should be scoped to a valid region, not '%s'; this endpoint signs for '%s'.", region, v.region)
	case service != signingName:
		return nil, denied("scope", "InvalidSignatureException", "Credential should be scoped to correct service: '%s'.", signingName)
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return nil, denied("body_hash", "InvalidSignatureException", "The provided x-amz-content-sha256 header does not match what was computed.")
	}
	want, err := v.expected(ctx, r, body, headers, payloadHash, cred, region, at)
	if err != nil {
		return nil, denied("malformed", "IncompleteSignatureException", "%v", err)
	}
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return nil, denied("bad_signature", "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	caller := cred.Caller
	caller.AccessKeyID = keyID
	return &caller, nil
}

// expected signs a copy of the request holding only the headers the client signed, with the key's secret,
// and returns the signature.
func (v *sigV4) expected(ctx context.Context, r *http.Request, body []byte, headers []string, payloadHash string, cred Credential, region string, at time.Time) (string, error) {
	u := *r.URL
	u.Scheme, u.Host = "https", r.Host
	c, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	c.Host = r.Host
	c.ContentLength = 0
	for _, h := range headers {
		switch h {
		case "host":
		case "content-length":
			c.ContentLength = int64(len(body))
		default:
			c.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: cred.Caller.AccessKeyID, SecretAccessKey: cred.SecretAccessKey}
	if err := v.signer.SignHTTP(ctx, creds, c, payloadHash, signingName, region, at); err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	_, sig, ok := strings.Cut(c.Header.Get("Authorization"), "Signature=")
	if !ok {
		return "", fmt.Errorf("the signer wrote no signature")
	}
	return sig, nil
}
