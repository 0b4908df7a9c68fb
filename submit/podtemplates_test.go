package submit

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/submit/podtemplate/s3fake"
)

// executorTemplate is a platform's executor template: spot capacity, a log shipper sidecar.
const executorTemplate = `apiVersion: v1
kind: Pod
metadata:
  labels:
    team: sales
spec:
  nodeSelector:
    eks.amazonaws.com/capacityType: SPOT
  containers:
  - name: fluent-bit
    image: public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.2
  - name: spark-kubernetes-executor
`

// TestStartJobRunPodTemplates: a run's pod template is fetched at submission with the submitter's access
// (S3 with its credentials, a ConfigMap of the run's own namespace, a file of its template directory), held to
// the virtual cluster's policy, stored with the run, and planned into spark-submit's ConfigMap for the driver;
// whatever is refused is refused before anything is created, naming the property and, for a template that is
// not a Pod, the line.
func TestStartJobRunPodTemplates(t *testing.T) {
	s3 := s3fake.New(t, map[string]string{
		"acme/exec.yaml":  executorTemplate,
		"acme/typo.yaml":  "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: spark\n    imagee: x\n",
		"acme/huge.yaml":  executorTemplate + strings.Repeat("# padding\n", 20000),
		"acme/host.yaml":  "spec:\n  volumes:\n  - name: root\n    hostPath: {path: /}\n",
		"acme/sa.yaml":    "spec:\n  serviceAccountName: clusterrole-aggregation-controller\n",
		"acme/denied.yml": executorTemplate,
	})
	s3.Deny("acme/denied.yml")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "exec.yaml"), []byte(executorTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	fluentBit := v1alpha1.VirtualClusterPolicy{AllowedImages: []string{"apache/spark:*", "public.ecr.aws/aws-observability/*"}}
	cases := map[string]struct {
		ref        string
		policy     v1alpha1.VirtualClusterPolicy
		wantErr    string // "" means accepted
		wantRule   string
		wantS3Keys []string
	}{
		"s3, read with the submitter's credentials": {ref: "s3://acme/exec.yaml", policy: fluentBit, wantS3Keys: []string{"AKIASUBMITTER"}},
		"a ConfigMap of the run's namespace":        {ref: "configmap://spark-templates/executor.yaml", policy: fluentBit},
		"a file of the template directory":          {ref: filepath.Join(dir, "exec.yaml"), policy: fluentBit},
		"a ConfigMap of another namespace":          {ref: "configmap://marketing/spark-templates/executor.yaml", policy: fluentBit, wantErr: "may only read ConfigMaps of its own namespace"},
		"a file outside the template directory":     {ref: "/etc/passwd", policy: fluentBit, wantErr: "outside the submitter's pod template directory"},
		"s3 denied to the submitter":                {ref: "s3://acme/denied.yml", policy: fluentBit, wantErr: "cannot be read with the submitter's AWS credentials"},
		"larger than 128 KiB":                       {ref: "s3://acme/huge.yaml", policy: fluentBit, wantErr: "larger than 131072 bytes"},
		"not a Pod: the line":                       {ref: "s3://acme/typo.yaml", policy: fluentBit, wantErr: `spark.kubernetes.executor.podTemplateFile=s3://acme/typo.yaml does not parse as a Pod: line 6: unknown field "imagee"`},
		"the default policy: a sidecar image":       {ref: "s3://acme/exec.yaml", wantRule: "allowedImages", wantErr: "container fluent-bit's image"},
		"the default policy: a hostPath volume":     {ref: "s3://acme/host.yaml", wantRule: "allowedVolumeTypes", wantErr: "volume root of type hostPath"},
		"the default policy: a service account":     {ref: "s3://acme/sa.yaml", wantRule: "allowedServiceAccounts", wantErr: "serviceAccountName clusterrole-aggregation-controller"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			templates := func(ns string) *corev1.ConfigMap {
				return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "spark-templates"}, Data: map[string]string{"executor.yaml": executorTemplate}}
			}
			c, s, vc := newCluster(t, templates("marketing"))
			ctx := context.Background()
			if err := c.Create(ctx, templates("sales")); err != nil {
				t.Fatal(err)
			}
			s.opts.PodTemplates.S3, s.opts.PodTemplates.Dir = s3.Client("AKIASUBMITTER"), dir
			var obj v1alpha1.VirtualCluster
			if err := c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: vc.ID}, &obj); err != nil {
				t.Fatal(err)
			}
			obj.Spec.Policy = tc.policy
			if err := c.Update(ctx, &obj); err != nil {
				t.Fatal(err)
			}
			keysBefore := len(s3.AccessKeys())
			req := makeRequest().VC(vc.ID).Classification("spark-defaults", map[string]string{"spark.kubernetes.executor.podTemplateFile": tc.ref}).Obj()
			sub, err := s.StartJobRun(ctx, req)
			if tc.wantErr != "" {
				var perr *PolicyError
				switch {
				case err == nil || !IsValidation(err) || !strings.Contains(err.Error(), tc.wantErr):
					t.Fatalf("err = %v, want a validation error containing %q", err, tc.wantErr)
				case !strings.Contains(err.Error(), "spark.kubernetes.executor.podTemplateFile"):
					t.Errorf("err = %v does not name the property", err)
				case tc.wantRule != "" && (!errors.As(err, &perr) || perr.Rule != tc.wantRule):
					t.Errorf("err = %v, want the policy rule %s", err, tc.wantRule)
				}
				if got := objectsIn(t, c, "sales"); got["JobRun"] != 0 {
					t.Errorf("a refused run was created: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("StartJobRun: %v", err)
			}
			if tc.wantS3Keys != nil && !slices.Equal(s3.AccessKeys()[keysBefore:], tc.wantS3Keys) {
				t.Errorf("S3 requests signed with %v, want %v", s3.AccessKeys()[keysBefore:], tc.wantS3Keys)
			}
			var run v1alpha1.JobRun
			if err := c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: sub.Response.ID}, &run); err != nil {
				t.Fatal(err)
			}
			if run.Spec.PodTemplates == nil || run.Spec.PodTemplates.Executor != executorTemplate {
				t.Fatalf("the run holds templates %+v, want the executor template as fetched", run.Spec.PodTemplates)
			}
			// What the controller creates from the stored run, with no access to the template's source.
			opts := s.PlanOptions()
			opts.Now, opts.Random, opts.PodTemplates = run.CreationTimestamp.Time, strings.NewReader(strings.Repeat("x", 64)), run.Spec.PodTemplates
			plan, err := NewPlan(&run.Spec.Request, Target{Namespace: "sales", VirtualClusterID: vc.ID, JobRunID: run.Name, Policy: &obj.Spec.Policy}, opts)
			if err != nil {
				t.Fatalf("planning the stored run: %v", err)
			}
			wantExecutorTemplate(t, plan, "spark-"+run.Name)
		})
	}
}

// wantExecutorTemplate checks spark-submit's PodTemplateConfigMapStep in a plan: the template in
// <prefix>-driver-podspec-conf-map under podspec-configmap-key, owned by the driver, mounted into the
// driver's container at /opt/spark/pod-template, and the property pointing at the mounted file.
func wantExecutorTemplate(t *testing.T, plan *Plan, prefix string) {
	t.Helper()
	cm := plan.PodTemplateConfigMap
	if cm == nil {
		t.Fatal("no pod template ConfigMap in the plan")
	}
	if cm.Name != prefix+"-driver-podspec-conf-map" || cm.Data["podspec-configmap-key"] != executorTemplate || cm.Immutable == nil || !*cm.Immutable {
		t.Errorf("pod template ConfigMap %s (immutable %v) holds %q", cm.Name, cm.Immutable, cm.Data)
	}
	if len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].Kind != "Pod" || cm.OwnerReferences[0].Name != plan.DriverPod.Name {
		t.Errorf("pod template ConfigMap owners %+v, want the driver pod %s", cm.OwnerReferences, plan.DriverPod.Name)
	}
	if !slices.Contains(plan.Objects(), client.Object(cm)) {
		t.Error("the ConfigMap is not among the objects to create")
	}
	var volume *corev1.Volume
	for i, v := range plan.DriverPod.Spec.Volumes {
		if v.Name == "pod-template-volume" {
			volume = &plan.DriverPod.Spec.Volumes[i]
		}
	}
	if volume == nil || volume.ConfigMap == nil || volume.ConfigMap.Name != cm.Name ||
		!slices.Equal(volume.ConfigMap.Items, []corev1.KeyToPath{{Key: "podspec-configmap-key", Path: "pod-spec-template.yml"}}) {
		t.Errorf("driver volume pod-template-volume = %+v", volume)
	}
	if !slices.ContainsFunc(plan.DriverPod.Spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == "pod-template-volume" && m.MountPath == "/opt/spark/pod-template"
	}) {
		t.Errorf("driver mounts %+v, want pod-template-volume at /opt/spark/pod-template", plan.DriverPod.Spec.Containers[0].VolumeMounts)
	}
	props := plan.ConfigMap.Data["spark.properties"]
	for _, want := range []string{
		"spark.kubernetes.executor.podTemplateFile=/opt/spark/pod-template/pod-spec-template.yml",
		"spark.kubernetes.executor.podTemplateContainerName=spark-kubernetes-executor",
	} {
		if !strings.Contains(props, want+"\n") {
			t.Errorf("spark.properties lacks %s:\n%s", want, props)
		}
	}
}

// TestPlanRefusesAnUnfetchedTemplate: a JobRun naming a template whose content it does not hold (made without
// a submitter) is refused: the controller never fetches anything.
func TestPlanRefusesAnUnfetchedTemplate(t *testing.T) {
	req := makeRequest().Classification("spark-defaults", map[string]string{"spark.kubernetes.executor.podTemplateFile": "configmap://other/secret"}).Obj()
	opts := newTestSubmitter(nil).planOptions()
	_, err := NewPlan(req, Target{Namespace: "sales", JobRunID: "0123456789abcdefghi"}, opts)
	if !IsValidation(err) || !strings.Contains(err.Error(), "was not fetched at submission") {
		t.Fatalf("err = %v, want a validation error saying the template was not fetched", err)
	}
}

// TestDriverPodTemplate: the driver pod is built on its template as spark-submit builds it: the template's
// sidecars first, Spark's container (the one named spark-kubernetes-driver) last with the run's image, the
// template's labels and volumes kept; the Service selects on Spark's driver labels only.
func TestDriverPodTemplate(t *testing.T) {
	const template = `apiVersion: v1
kind: Pod
metadata:
  labels:
    team: sales
spec:
  initContainers:
  - name: fetch-certs
    image: apache/spark:3.5.3
  volumes:
  - name: certs
    emptyDir: {}
  containers:
  - name: fluent-bit
    image: fluent/fluent-bit:3.2.4
  - name: spark-kubernetes-driver
    image: ignored/by-spark:1
    volumeMounts:
    - name: certs
      mountPath: /etc/certs
`
	req := makeRequest().Classification("spark-defaults", map[string]string{"spark.kubernetes.driver.podTemplateFile": "s3://acme/driver.yaml"}).Obj()
	opts := newTestSubmitter(nil).planOptions()
	opts.PodTemplates = &v1alpha1.PodTemplates{Driver: template}
	plan, err := NewPlan(req, Target{Namespace: "sales", JobRunID: "0123456789abcdefghi"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	pod := plan.DriverPod
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"fluent-bit", "spark-kubernetes-driver"}) || len(pod.Spec.InitContainers) != 1 {
		t.Fatalf("containers %v, init containers %d; want the template's sidecar, then Spark's", names, len(pod.Spec.InitContainers))
	}
	spark := pod.Spec.Containers[1]
	if spark.Image != "apache/spark:3.5.3" || spark.VolumeMounts[0].Name != "certs" || len(spark.Env) == 0 || spark.Args[0] != "driver" {
		t.Errorf("Spark's container is not built on the template's: %+v", spark)
	}
	if pod.Labels["team"] != "sales" || pod.Labels["spark-role"] != "driver" || pod.Spec.Volumes[0].Name != "certs" {
		t.Errorf("labels %v, volumes %+v: want the template's kept", pod.Labels, pod.Spec.Volumes)
	}
	if _, ok := plan.Service.Spec.Selector["team"]; ok {
		t.Errorf("the Service selects on the template's labels: %v", plan.Service.Spec.Selector)
	}
	if plan.PodTemplateConfigMap != nil {
		t.Error("a driver template alone made an executor template ConfigMap")
	}
}

// TestPodTemplatesRefusedBeforeTheyStrand: what the API server would refuse in every pod built on a template
// is refused at submission, so no driver creates refused executors again and again.
func TestPodTemplatesRefusedBeforeTheyStrand(t *testing.T) {
	cases := map[string]struct {
		template string
		props    map[string]string
		wantErr  string // "" means accepted
	}{
		"Spark's volumes, a property volume and a secret are mounted": {
			template: "spec:\n  containers:\n  - name: shipper\n    volumeMounts:\n    - {name: spark-local-dir-1, mountPath: /l}\n    - {name: data, mountPath: /d}\n    - {name: creds-volume, mountPath: /c}\n",
			props:    map[string]string{"spark.kubernetes.executor.volumes.persistentVolumeClaim.data.mount.path": "/data", "spark.kubernetes.executor.volumes.persistentVolumeClaim.data.options.claimName": "OnDemand", "spark.kubernetes.executor.secrets.creds": "/etc/creds"},
		},
		"a container name that is not a DNS label": {template: "spec:\n  containers:\n  - name: Log_Shipper\n", wantErr: `container name "Log_Shipper"`},
		"two containers of one name":               {template: "spec:\n  initContainers:\n  - name: a\n  containers:\n  - name: a\n", wantErr: "two containers are named a"},
		"two volumes of one name":                  {template: "spec:\n  volumes:\n  - {name: v, emptyDir: {}}\n  - {name: v, emptyDir: {}}\n", wantErr: "two volumes are named v"},
		"a mount of no volume":                     {template: "spec:\n  containers:\n  - name: a\n    volumeMounts:\n    - {name: certs, mountPath: /c}\n", wantErr: "mounts volume certs, which neither the template nor Spark defines"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			props := map[string]string{"spark.kubernetes.executor.podTemplateFile": "s3://acme/exec.yaml"}
			maps.Copy(props, tc.props)
			opts := newTestSubmitter(nil).planOptions()
			opts.PodTemplates = &v1alpha1.PodTemplates{Executor: tc.template}
			_, err := NewPlan(makeRequest().Classification("spark-defaults", props).Obj(), Target{Namespace: "sales", JobRunID: "0123456789abcdefghi"}, opts)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (!IsValidation(err) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "spark.kubernetes.executor.podTemplateFile=s3://acme/exec.yaml")):
				t.Fatalf("err = %v, want a validation error naming the property and saying %q", err, tc.wantErr)
			}
		})
	}
}

// TestPodTemplatesAndPodSecurity: a template that the namespace's enforced Pod Security level refuses in
// every pod built on it is refused at submission; other levels and safe templates pass.
func TestPodTemplatesAndPodSecurity(t *testing.T) {
	const hostNetwork = "spec:\n  hostNetwork: true\n  containers:\n  - name: spark-kubernetes-executor\n"
	const privileged = "spec:\n  containers:\n  - name: debug\n    image: apache/spark:3.5.3\n    securityContext: {privileged: true}\n  - name: spark-kubernetes-executor\n"
	cases := map[string]struct {
		level, template, wantErr string
	}{
		"baseline: host network":     {level: "baseline", template: hostNetwork, wantErr: `enforces Pod Security "baseline", which forbids hostNetwork`},
		"restricted: privileged":     {level: "restricted", template: privileged, wantErr: "forbids the privileged container debug"},
		"privileged: host network":   {level: "privileged", template: hostNetwork},
		"no level: host network":     {template: hostNetwork},
		"baseline: a plain template": {level: "baseline", template: executorTemplate},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, s, vc := newCluster(t)
			ctx := context.Background()
			var ns corev1.Namespace
			if err := c.Get(ctx, client.ObjectKey{Name: "sales"}, &ns); err != nil {
				t.Fatal(err)
			}
			if tc.level != "" {
				ns.Labels["pod-security.kubernetes.io/enforce"] = tc.level
				if err := c.Update(ctx, &ns); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "sales", Name: "t"}, Data: map[string]string{"pod.yaml": tc.template}}); err != nil {
				t.Fatal(err)
			}
			var obj v1alpha1.VirtualCluster
			if err := c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: vc.ID}, &obj); err != nil {
				t.Fatal(err)
			}
			obj.Spec.Policy.AllowedImages = []string{"apache/spark:*", "public.ecr.aws/aws-observability/*"}
			if err := c.Update(ctx, &obj); err != nil {
				t.Fatal(err)
			}
			req := makeRequest().VC(vc.ID).Classification("spark-defaults", map[string]string{"spark.kubernetes.executor.podTemplateFile": "configmap://t"}).Obj()
			_, err := s.StartJobRun(ctx, req)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (!IsValidation(err) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "spark.kubernetes.executor.podTemplateFile")):
				t.Fatalf("err = %v, want a validation error naming the property and saying %q", err, tc.wantErr)
			case tc.wantErr != "" && objectsIn(t, c, "sales")["JobRun"] != 0:
				t.Error("a refused run was created")
			}
		})
	}
}
