package podtemplate

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := map[string]struct {
		template string
		wantErr  string // "" means it parses
		check    func(t *testing.T, containers []string)
	}{
		"EMR's executor template with a sidecar": {
			template: `apiVersion: v1
kind: Pod
metadata:
  labels:
    team: ny-taxi
spec:
  nodeSelector:
    eks.amazonaws.com/capacityType: SPOT
  containers:
  - name: fluent-bit
    image: public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.2
    resources:
      requests: {cpu: 50m, memory: 64Mi}
  - name: spark-kubernetes-executor
`,
		},
		"JSON, without apiVersion and kind": {template: `{"spec": {"containers": [{"name": "spark"}]}}`},
		"on and yes are strings (YAML 1.2)": {template: "metadata:\n  labels:\n    debug: on\n    trace: yes\n"},
		"a YAML syntax error":               {template: "spec:\n\tcontainers: []\n", wantErr: "line 2: found character that cannot start any token"},
		"a misspelt field":                  {template: "spec:\n  containers:\n  - name: a\n  - name: spark\n    imagee: b\n", wantErr: `line 5: unknown field "imagee"`},
		"a list where a map belongs":        {template: "spec:\n  nodeSelector:\n  - a\n", wantErr: "line 2: spec.nodeSelector must be map[string]string, not an array"},
		"a number where a string belongs":   {template: "metadata:\n  name: x\nspec:\n  serviceAccountName: 42\n", wantErr: "line 4: spec.serviceAccountName must be string"},
		"a bad quantity":                    {template: "spec:\n  containers:\n  - name: a\n    resources:\n      requests:\n        cpu: 1\n        memory: lots\n", wantErr: "line 7: quantities must match"},
		"a Deployment":                      {template: "apiVersion: v1\nkind: Deployment\n", wantErr: "line 2: kind must be Pod, not \"Deployment\""},
		"a list":                            {template: "- name: a\n", wantErr: "line 1: a pod template is a mapping (a Pod), not a list"},
		"two documents":                     {template: "spec: {}\n---\nspec: {}\n", wantErr: "line 2: the template holds more than one YAML document"},
		"empty":                             {template: "\n# nothing\n", wantErr: "the template is empty"},
		"a duplicate key":                   {template: "metadata:\n  labels: {a: b}\n  labels: {c: d}\n", wantErr: `line 3: "labels" is given twice (first on line 2)`},
		"infinity":                          {template: "spec:\n  activeDeadlineSeconds: .inf\n", wantErr: "line 2: .inf is not a number JSON can hold"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pod, err := Parse([]byte(tc.template))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tc.wantErr == "" && pod == nil:
				t.Fatal("no pod")
			case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one starting %q", err, tc.wantErr)
			}
		})
	}
}

func TestSparkContainer(t *testing.T) {
	pod, err := Parse([]byte("spec:\n  containers:\n  - name: fluent-bit\n  - name: spark-kubernetes-executor\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		name string
		want int
	}{
		"named":                   {name: "spark-kubernetes-executor", want: 1},
		"unnamed: the first":      {want: 0},
		"named but absent: first": {name: "spark", want: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := SparkContainer(pod, tc.name); got != tc.want {
				t.Errorf("SparkContainer(%q) = %d, want %d", tc.name, got, tc.want)
			}
		})
	}
}
