package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/emrcontainers"
	"github.com/aws/aws-sdk-go-v2/service/emrcontainers/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/submit/podtemplate/s3fake"
)

// platformExecutorTemplate is a platform team's executor template: a team label and a log shipper that reads
// Spark's local dir, before Spark's container.
const platformExecutorTemplate = `apiVersion: v1
kind: Pod
metadata:
  labels:
    team: analytics
spec:
  containers:
  - name: fluent-bit
    image: fluent/fluent-bit:3.2.4
    resources:
      requests:
        cpu: 50m
        memory: 64Mi
    volumeMounts:
    - name: spark-local-dir-1
      mountPath: /spark-local
      readOnly: true
  - name: spark-kubernetes-executor
`

// TestAPIExecutorPodTemplateFromS3: a tenant starts a run through the API (aws-sdk-go-v2) whose executor
// template is on an S3-compatible server and whose driver template is a ConfigMap of its namespace (read with
// the tenant's access; the driver is built on it and placed on on-demand capacity); the API fetches the
// executor template with its own AWS credential chain, the
// controller creates spark-submit's <prefix>-driver-podspec-conf-map owned by the driver pod and mounted at
// /opt/spark/pod-template, the simulated driver builds its executors on that template (read through the
// API), and the webhook places them (spot, the driver's zone). Templates that are not Pods, or that name
// another namespace's ConfigMap or the API's files, are refused with a ValidationException. The ConfigMap
// goes with the driver.
func TestAPIExecutorPodTemplateFromS3(t *testing.T) {
	requireJobs(t)
	ctx := context.Background()
	bucket := s3fake.New(t, map[string]string{
		"platform-templates/spark/executor.yaml": platformExecutorTemplate,
		"platform-templates/spark/typo.yaml":     "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: spark-kubernetes-executor\n    imagePullPolcy: Always\n",
	})
	alice := apiKey{"AKIATEMPLATEALICE00", "alice-secret", "alice-templates@example.com"}
	const apiAccessKey = "AKIAAPISUBMITTER000"
	url := startAPIWith(ctx, t, apiRun{
		args: []string{"--s3-endpoint-url=" + bucket.URL},
		// The API's own AWS identity, found by the SDK's default chain (IRSA's token file in a cluster).
		env: []string{"AWS_ACCESS_KEY_ID=" + apiAccessKey, "AWS_SECRET_ACCESS_KEY=api-secret",
			"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true"},
	}, alice)
	ns := tenantNamespace(t)
	bind(t, ns, "sparkplace-job-submitter", alice.user)
	vc, err := newSubmitter(adminClient(t)).CreateVirtualCluster(ctx, "analytics", ns)
	if err != nil {
		t.Fatal(err)
	}
	// The platform allows the log shipper's image besides the release's.
	var obj v1alpha1.VirtualCluster
	if err := adminClient(t).Get(ctx, client.ObjectKey{Namespace: ns, Name: vc.ID}, &obj); err != nil {
		t.Fatal(err)
	}
	base := obj.DeepCopy()
	obj.Spec.Policy.AllowedImages = []string{"apache/spark:3.5.*", "fluent/fluent-bit:*"}
	// A patch, not an update: the controller writes the virtual cluster's status meanwhile.
	if err := adminClient(t).Patch(ctx, &obj, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	// The driver's template is a ConfigMap of the tenant's namespace, read with alice's own access.
	const driverTemplate = "apiVersion: v1\nkind: Pod\nmetadata:\n  labels:\n    team: analytics\nspec:\n  volumes:\n  - name: scratch\n    emptyDir: {}\n  containers:\n  - name: spark-kubernetes-driver\n    volumeMounts:\n    - name: scratch\n      mountPath: /scratch\n"
	if _, err := cp.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "spark-templates"}, Data: map[string]string{"driver.yaml": driverTemplate},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sdk := sdkFor(url, alice)
	start := func(token, template string, more ...string) (*emrcontainers.StartJobRunOutput, error) {
		props := map[string]string{"spark.kubernetes.executor.podTemplateFile": template}
		for i := 0; i+1 < len(more); i += 2 {
			props[more[i]] = more[i+1]
		}
		return sdk.StartJobRun(ctx, &emrcontainers.StartJobRunInput{
			VirtualClusterId: aws.String(vc.ID), Name: aws.String("sparkpi-template"), ClientToken: aws.String(token),
			ExecutionRoleArn: aws.String("arn:aws:iam::152324983118:role/emr-e2e-job-role"), ReleaseLabel: aws.String("spark-3.5.3"),
			JobDriver: &types.JobDriver{SparkSubmitJobDriver: &types.SparkSubmitJobDriver{
				EntryPoint:            aws.String("local:///opt/spark/examples/jars/spark-examples_2.12-3.5.3.jar"),
				SparkSubmitParameters: aws.String("--class org.apache.spark.examples.SparkPi --conf spark.executor.instances=2"),
			}},
			ConfigurationOverrides: &types.ConfigurationOverrides{ApplicationConfiguration: []types.Configuration{{
				Classification: aws.String("spark-defaults"),
				Properties:     props,
			}}},
		})
	}

	refusals := map[string]struct{ template, want string }{
		"not a Pod":                     {"s3://platform-templates/spark/typo.yaml", `does not parse as a Pod: line 6: unknown field "imagePullPolcy"`},
		"another namespace's ConfigMap": {"configmap://kube-system/kube-proxy/config.conf", "may only read ConfigMaps of its own namespace"},
		"the API's files":               {"/etc/passwd", "local pod templates are not accepted by this submitter"},
	}
	for name, tc := range refusals {
		_, err := start("refused-"+name, tc.template)
		if errorCode(err) != "ValidationException" || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "spark.kubernetes.executor.podTemplateFile") {
			t.Errorf("%s: %v, want a ValidationException naming the property and saying %q", name, err, tc.want)
		}
	}
	var runs v1alpha1.JobRunList
	if err := adminClient(t).List(ctx, &runs, client.InNamespace(ns)); err != nil || len(runs.Items) != 0 {
		t.Fatalf("refused runs left %d job runs (%v)", len(runs.Items), err)
	}

	out, err := start("from-s3", "s3://platform-templates/spark/executor.yaml", "spark.kubernetes.driver.podTemplateFile", "configmap://spark-templates/driver.yaml")
	if err != nil {
		t.Fatalf("StartJobRun: %v", err)
	}
	if keys := bucket.AccessKeys(); !slices.Contains(keys, apiAccessKey) || slices.Contains(keys, alice.id) {
		t.Errorf("S3 requests signed with %v, want the API's own credentials %s", keys, apiAccessKey)
	}
	id := aws.ToString(out.Id)
	// What was fetched is what runs: the stored templates can be neither changed nor dropped.
	for name, patch := range map[string]string{
		"changed": `{"spec": {"podTemplates": {"executor": "spec: {hostNetwork: true}"}}}`,
		"dropped": `{"spec": {"podTemplates": null}}`,
	} {
		run := &v1alpha1.JobRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: id}}
		if err := adminClient(t).Patch(ctx, run, client.RawPatch(k8stypes.MergePatchType, []byte(patch))); !apierrors.IsInvalid(err) {
			t.Errorf("the run's pod templates %s: %v, want Invalid", name, err)
		}
	}
	driver := waitRunning(t, ns, "spark-"+id+"-driver")
	if driver.Pod.Labels["team"] != "analytics" || driver.Pod.Spec.Volumes[0].Name != "scratch" || driver.capacity() != "ON_DEMAND" {
		t.Errorf("driver %s: labels %v, volumes %v, on %s capacity; want built on its template and placed on ON_DEMAND", driver.Pod.Name, driver.Pod.Labels, driver.Pod.Spec.Volumes, driver.capacity())
	}

	// The driver's objects carry the template as spark-submit's would.
	cmName := "spark-" + id + "-driver-podspec-conf-map"
	cm, err := cp.Client.CoreV1().ConfigMaps(ns).Get(ctx, cmName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the executor template's ConfigMap: %v", err)
	}
	if cm.Data["podspec-configmap-key"] != platformExecutorTemplate || !metav1.IsControlledBy(cm, driver.Pod) {
		t.Errorf("ConfigMap %s holds %q, owners %+v; want the template, controlled by the driver pod", cmName, cm.Data, cm.OwnerReferences)
	}

	// The driver builds its executors on the template it reads; the webhook places them.
	app := submittedApp(driver.Pod)
	if ok, err := app.UseExecutorTemplate(ctx, cp.Client, driver.Pod); err != nil || !ok {
		t.Fatalf("the driver's executor template: %v, %v", ok, err)
	}
	res, err := (&sparksim.Allocator{Client: cp.Client, App: app}).Run(ctx, 2)
	if err != nil {
		t.Fatalf("allocate executors: %v", err)
	}
	for _, p := range res.Created {
		e := waitRunning(t, ns, p.Name)
		containers := e.Pod.Spec.Containers
		if len(containers) != 2 || containers[0].Name != "fluent-bit" || containers[1].Name != sparksim.ExecutorContainer || e.Pod.Labels["team"] != "analytics" {
			t.Errorf("executor %s was not built on the template: containers %v, labels %v", e.Pod.Name, containerNames(e.Pod), e.Pod.Labels)
		}
		if _, ok := e.Pod.Annotations[placement.AnnotationKey]; !ok {
			t.Errorf("executor %s was not placed by the webhook (no %s annotation)", e.Pod.Name, placement.AnnotationKey)
		}
		if e.capacity() != "SPOT" || e.zone() != driver.zone() {
			t.Errorf("executor %s on %s (%s, %s), want SPOT in the driver's zone %s", e.Pod.Name, e.Node.Name, e.capacity(), e.zone(), driver.zone())
		}
	}

	// Cancelled, the driver goes, and its template ConfigMap with it (garbage collection of owned objects).
	if _, err := sdk.CancelJobRun(ctx, &emrcontainers.CancelJobRunInput{VirtualClusterId: aws.String(vc.ID), Id: aws.String(id)}); err != nil {
		t.Fatalf("CancelJobRun: %v", err)
	}
	waitJobRunState(t, newSubmitter(adminClient(t)), vc.ID, id, "CANCELLED")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := cp.Client.CoreV1().ConfigMaps(ns).Get(ctx, cmName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ConfigMap %s still there after its driver was deleted (%v)", cmName, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func containerNames(p *corev1.Pod) []string {
	var names []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	return names
}
