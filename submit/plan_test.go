package submit

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

// requestBuilder makes StartJobRun requests for tests, starting from a valid Spark 3.5 Scala job.
type requestBuilder struct{ req StartJobRunRequest }

func makeRequest() *requestBuilder {
	return &requestBuilder{req: StartJobRunRequest{
		Name:             "sales-rollup",
		VirtualClusterID: "awlrqupqxuy81jws3c0q2ik81",
		ClientToken:      "token-1",
		ExecutionRoleARN: "arn:aws:iam::152324983118:role/spark-jobs",
		ReleaseLabel:     "spark-3.5.3",
		JobDriver: &JobDriver{SparkSubmitJobDriver: &SparkSubmitJobDriver{
			EntryPoint:            "s3://acme-jobs/sales/sales-rollup-assembly-1.4.0.jar",
			EntryPointArguments:   []string{"--date", "2026-11-02"},
			SparkSubmitParameters: "--class com.acme.sales.Rollup",
		}},
	}}
}

func (b *requestBuilder) Params(p string) *requestBuilder {
	b.req.JobDriver.SparkSubmitJobDriver.SparkSubmitParameters = p
	return b
}

func (b *requestBuilder) EntryPoint(e string) *requestBuilder {
	b.req.JobDriver.SparkSubmitJobDriver.EntryPoint = e
	return b
}

func (b *requestBuilder) Classification(name string, props map[string]string) *requestBuilder {
	if b.req.ConfigurationOverrides == nil {
		b.req.ConfigurationOverrides = &ConfigurationOverrides{}
	}
	b.req.ConfigurationOverrides.ApplicationConfiguration = append(b.req.ConfigurationOverrides.ApplicationConfiguration,
		Configuration{Classification: name, Properties: props})
	return b
}

func (b *requestBuilder) Token(t string) *requestBuilder { b.req.ClientToken = t; return b }

func (b *requestBuilder) VC(id string) *requestBuilder { b.req.VirtualClusterID = id; return b }

func (b *requestBuilder) Obj() *StartJobRunRequest { r := b.req; return &r }

func TestPlan(t *testing.T) {
	cases := map[string]struct {
		req *StartJobRunRequest
		// check looks at one aspect of the plan; wantProps are compared key by key.
		wantProps  map[string]string
		wantLabels map[string]string
		check      func(t *testing.T, p *Plan)
	}{
		"command-line options beat --conf, which beats spark-defaults": {
			req: makeRequest().
				Params("--class com.acme.sales.Rollup --conf spark.driver.memory=2g --driver-memory 6g --conf spark.executor.memory=3g --num-executors 4").
				Classification("spark-defaults", map[string]string{"spark.driver.memory": "1g", "spark.executor.memory": "1g", "spark.executor.instances": "2", "spark.sql.shuffle.partitions": "64"}).Obj(),
			wantProps: map[string]string{
				"spark.driver.memory": "6g", "spark.executor.memory": "3g", "spark.executor.instances": "4", "spark.sql.shuffle.partitions": "64",
			},
			check: func(t *testing.T, p *Plan) {
				// 6g = 6144 MiB, overhead max(614, 384) = 614.
				wantMemory(t, p, "6758Mi")
			},
		},
		"Spark 3.5 labels, the JAR joins spark.jars, JVM overhead floor": {
			req: makeRequest().Params("--class com.acme.sales.Rollup --jars s3://acme-jobs/lib/delta-spark_2.12-3.2.0.jar").Obj(),
			wantProps: map[string]string{
				"spark.jars":                            "s3://acme-jobs/lib/delta-spark_2.12-3.2.0.jar,s3://acme-jobs/sales/sales-rollup-assembly-1.4.0.jar",
				"spark.kubernetes.container.image":      "apache/spark:3.5.3",
				"spark.kubernetes.memoryOverheadFactor": "0.1",
				"spark.kubernetes.resource.type":        "java",
				"spark.app.name":                        "sales-rollup",
			},
			wantLabels: map[string]string{
				"spark-app-selector": "spark-6ae6783f4fbde91b6eb88b73a48ed247", "spark-role": "driver",
				"spark-app-name": "sales-rollup", "spark-version": "3.5.3",
				LabelJobRunID: JobRunID("awlrqupqxuy81jws3c0q2ik81", "token-1"), LabelVirtualClusterID: "awlrqupqxuy81jws3c0q2ik81",
			},
			check: func(t *testing.T, p *Plan) { wantMemory(t, p, "1408Mi") },
		},
		"driver profile label goes to executors too": {
			req: makeRequest().Classification("spark-defaults", map[string]string{"spark.kubernetes.driver.label.sparkplace.io/profile": "nvme"}).Obj(),
			wantProps: map[string]string{
				"spark.kubernetes.driver.label.sparkplace.io/profile":   "nvme",
				"spark.kubernetes.executor.label.sparkplace.io/profile": "nvme",
			},
		},
		"image conf overrides the release table; node selectors, annotations, env": {
			req: makeRequest().Params("--class com.acme.sales.Rollup --conf spark.kubernetes.container.image=registry.acme.io/spark:3.5.3-acme1").
				Classification("spark-defaults", map[string]string{
					"spark.kubernetes.node.selector.noderole":                              "spark",
					"spark.kubernetes.driver.node.selector.eks.amazonaws.com/capacityType": "ON_DEMAND",
					"spark.kubernetes.driver.annotation.acme.io/app-id":                    "{{APP_ID}}",
					"spark.kubernetes.driverEnv.AWS_REGION":                                "eu-west-1",
				}).Obj(),
			check: func(t *testing.T, p *Plan) {
				pod := p.DriverPod
				if got := pod.Spec.Containers[0].Image; got != "registry.acme.io/spark:3.5.3-acme1" {
					t.Errorf("image = %s", got)
				}
				if diff := cmp.Diff(map[string]string{"noderole": "spark", "eks.amazonaws.com/capacityType": "ON_DEMAND"}, pod.Spec.NodeSelector); diff != "" {
					t.Errorf("nodeSelector (-want +got):\n%s", diff)
				}
				if got := pod.Annotations["acme.io/app-id"]; got != "spark-6ae6783f4fbde91b6eb88b73a48ed247" {
					t.Errorf("annotation = %q, want the app id", got)
				}
				if !cmp.Equal(pod.Spec.Containers[0].Env[2], corev1.EnvVar{Name: "AWS_REGION", Value: "eu-west-1"}) {
					t.Errorf("env[2] = %v, want AWS_REGION after Spark's own", pod.Spec.Containers[0].Env[2])
				}
			},
		},
		"spark-env exports reach driver and executors; log4j2 lands in the conf volume": {
			req: func() *StartJobRunRequest {
				r := makeRequest().Classification("spark-log4j2", map[string]string{"rootLogger.level": "warn"}).Obj()
				r.ConfigurationOverrides.ApplicationConfiguration = append(r.ConfigurationOverrides.ApplicationConfiguration, Configuration{
					Classification: "spark-env",
					Configurations: []v1alpha1.NestedConfiguration{{Classification: "export", Properties: map[string]string{"PYSPARK_PYTHON": "/usr/bin/python3"}}},
				})
				return r
			}(),
			wantProps: map[string]string{
				"spark.kubernetes.driverEnv.PYSPARK_PYTHON": "/usr/bin/python3",
				"spark.executorEnv.PYSPARK_PYTHON":          "/usr/bin/python3",
			},
			check: func(t *testing.T, p *Plan) {
				if got := p.ConfigMap.Data["log4j2.properties"]; got != "rootLogger.level=warn\n" {
					t.Errorf("log4j2.properties = %q", got)
				}
				items := p.DriverPod.Spec.Volumes[len(p.DriverPod.Spec.Volumes)-1].ConfigMap.Items
				if len(items) != 2 || items[0].Key != "log4j2.properties" {
					t.Errorf("conf volume items = %v, want log4j2.properties and spark.properties", items)
				}
			},
		},
		"a mounted spark-local-dir volume replaces the default local dir; explicit overhead": {
			req: makeRequest().Classification("spark-defaults", map[string]string{
				"spark.kubernetes.driver.volumes.hostPath.spark-local-dir-1.mount.path":   "/pv/tmp",
				"spark.kubernetes.driver.volumes.hostPath.spark-local-dir-1.options.path": "/pv-disks/local",
				"spark.driver.memoryOverhead":                                             "1g",
			}).Obj(),
			check: func(t *testing.T, p *Plan) {
				vols := p.DriverPod.Spec.Volumes
				if len(vols) != 2 || vols[0].HostPath == nil || vols[0].HostPath.Path != "/pv-disks/local" {
					t.Errorf("volumes = %v, want the hostPath then the conf volume", vols)
				}
				for _, e := range p.DriverPod.Spec.Containers[0].Env {
					if e.Name == "SPARK_LOCAL_DIRS" {
						t.Errorf("SPARK_LOCAL_DIRS set although a spark-local-dir volume is mounted")
					}
				}
				wantMemory(t, p, "2048Mi")
			},
		},
		"a named service account is used as is, and none is created for it": {
			req: makeRequest().Classification("spark-defaults", map[string]string{"spark.kubernetes.authenticate.driver.serviceAccountName": "spark-prod"}).Obj(),
			check: func(t *testing.T, p *Plan) {
				if p.CreateServiceAccount || p.ServiceAccount != "spark-prod" || p.DriverPod.Spec.ServiceAccountName != "spark-prod" {
					t.Errorf("service account = %s, planned %q (create %v)", p.DriverPod.Spec.ServiceAccountName, p.ServiceAccount, p.CreateServiceAccount)
				}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			plan, err := newTestSubmitter(nil).DryRun(tc.req, "sales")
			if err != nil {
				t.Fatalf("DryRun: %v", err)
			}
			for k, want := range tc.wantProps {
				if got, ok := plan.SparkProperties[k]; !ok || got != want {
					t.Errorf("%s = %q (set: %v), want %q", k, got, ok, want)
				}
			}
			if tc.wantLabels != nil {
				if diff := cmp.Diff(tc.wantLabels, plan.DriverPod.Labels); diff != "" {
					t.Errorf("driver labels (-want +got):\n%s", diff)
				}
			}
			if tc.check != nil {
				tc.check(t, plan)
			}
		})
	}
}

func wantMemory(t *testing.T, p *Plan, want string) {
	t.Helper()
	res := p.DriverPod.Spec.Containers[0].Resources
	q := resource.MustParse(want)
	if got := res.Requests[corev1.ResourceMemory]; got.Cmp(q) != 0 {
		t.Errorf("memory request = %s, want %s", got.String(), want)
	}
	if got := res.Limits[corev1.ResourceMemory]; got.Cmp(q) != 0 {
		t.Errorf("memory limit = %s, want %s", got.String(), want)
	}
}

// TestSparkSQLJobDriver: a sparkSqlJobDriver runs its file with Spark's SQL command line driver, with
// sparkSqlParameters read as spark-submit options, as EMR does.
func TestSparkSQLJobDriver(t *testing.T) {
	req := makeRequest().Obj()
	req.JobDriver = &JobDriver{SparkSQLJobDriver: &SparkSQLJobDriver{
		EntryPoint: "s3://acme-jobs/sales/rollup.sql", SparkSQLParameters: "--conf spark.executor.instances=3 --name daily-rollup",
	}}
	plan, err := newTestSubmitter(nil).DryRun(req, "sales")
	if err != nil {
		t.Fatalf("DryRun: %v", err)
	}
	args := plan.DriverPod.Spec.Containers[0].Args
	want := []string{"driver", "--properties-file", "/opt/spark/conf/spark.properties", "--class", sparkSQLDriver, sparkInternal, "-f", "s3://acme-jobs/sales/rollup.sql"}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("driver args (-want +got):\n%s", diff)
	}
	if plan.SparkProperties["spark.executor.instances"] != "3" || plan.SparkProperties["spark.app.name"] != "daily-rollup" {
		t.Errorf("sparkSqlParameters not applied: %v", plan.SparkProperties)
	}
	if _, ok := plan.SparkProperties["spark.jars"]; ok {
		t.Errorf("the SQL file was added to spark.jars: %s", plan.SparkProperties["spark.jars"])
	}
	req.JobDriver.SparkSQLJobDriver.SparkSQLParameters = "--class com.acme.Main"
	if _, err := newTestSubmitter(nil).DryRun(req, "sales"); !IsValidation(err) {
		t.Errorf("--class in sparkSqlParameters: %v, want a validation error", err)
	}
}

func TestMonitoringConfiguration(t *testing.T) {
	cases := map[string]struct {
		m         *MonitoringConfiguration
		wantProps map[string]string
		wantErr   string
		wantWarn  string
	}{
		"S3 logs become event logs a History Server reads": {
			m:         &MonitoringConfiguration{PersistentAppUI: "ENABLED", S3MonitoringConfiguration: &v1alpha1.S3MonitoringConfiguration{LogURI: "s3://acme-logs/emr/"}},
			wantProps: map[string]string{"spark.eventLog.enabled": "true", "spark.eventLog.dir": "s3a://acme-logs/emr/" + JobRunID("awlrqupqxuy81jws3c0q2ik81", "token-1") + "/sparklogs/"},
		},
		"CloudWatch is refused":        {m: &MonitoringConfiguration{CloudWatchMonitoringConfiguration: &v1alpha1.CloudWatchMonitoringConfiguration{LogGroupName: "/emr"}}, wantErr: "CloudWatch logging is not available"},
		"not an S3 URI":                {m: &MonitoringConfiguration{S3MonitoringConfiguration: &v1alpha1.S3MonitoringConfiguration{LogURI: "/var/log"}}, wantErr: "must be an s3:// URI"},
		"persistent UI without S3":     {m: &MonitoringConfiguration{PersistentAppUI: "ENABLED"}, wantWarn: "no event logs"},
		"log rotation is reported":     {m: &MonitoringConfiguration{ContainerLogRotationConfiguration: &v1alpha1.ContainerLogRotationConfiguration{RotationSize: "2GB", MaxFilesToKeep: 5}}, wantWarn: "kubelet rotates"},
		"persistentAppUI is validated": {m: &MonitoringConfiguration{PersistentAppUI: "YES"}, wantErr: "must be ENABLED or DISABLED"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := makeRequest().Obj()
			req.ConfigurationOverrides = &ConfigurationOverrides{MonitoringConfiguration: tc.m}
			plan, err := newTestSubmitter(nil).DryRun(req, "sales")
			if tc.wantErr != "" {
				if !IsValidation(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.wantProps {
				if plan.SparkProperties[k] != v {
					t.Errorf("%s = %q, want %q", k, plan.SparkProperties[k], v)
				}
			}
			if tc.wantWarn != "" && !strings.Contains(strings.Join(plan.Warnings, "\n"), tc.wantWarn) {
				t.Errorf("warnings %q lack %q", plan.Warnings, tc.wantWarn)
			}
		})
	}
}
