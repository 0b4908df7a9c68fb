package policies

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/sparkplace/sparkplace/placement"
)

// A decision set from its Rego value is the decision its JSON decodes to; what setValue does not take, the
// JSON path decodes or refuses, with its error.
func TestDecisionValueMatchesJSON(t *testing.T) {
	tests := []struct {
		name, value string
		// direct: setValue takes the value itself.
		direct bool
	}{
		{"maps and lists", `{"nodeSelector": {"noderole": "spark"}, "labels": {"a": "b"}, "annotations": {"c": "d"}, "rules": ["x", "y"], "notes": ["n"], "deny": ["no"], "schedulerName": "s", "priorityClassName": "p"}`, true},
		{"a set as a list", `{"rules": {"b", "a"}}`, true},
		{"tolerations", `{"tolerations": [{"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}, {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]}`, true},
		{"affinity", `{"nodeAffinity": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]}], "podAffinity": [{"labelSelector": {"matchLabels": {"spark-role": "driver"}}, "topologyKey": "z"}], "preferredNodeAffinity": [{"weight": 100, "preference": {"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}}], "preferredPodAffinity": [{"weight": 50, "podAffinityTerm": {"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}, "topologyKey": "z"}}]}`, true},
		{"spread", `{"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "node.kubernetes.io/instance-type", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"spark-app-selector": "a"}}, "minDomains": 2}]}`, true},
		{"local dirs", `{"localDirs": {"type": "ephemeral", "volumes": ["spark-local-dir-1"], "storageClassName": "local-nvme", "size": "100Gi", "fsGroup": 185}}`, true},
		{"init container", `{"initContainers": [{"name": "c", "image": "busybox", "command": ["sh"], "env": [{"name": "POD_UID", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.uid"}}}], "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}, "securityContext": {"runAsUser": 0, "runAsNonRoot": false, "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}, "seccompProfile": {"type": "RuntimeDefault"}}, "ports": [{"containerPort": 8080}], "livenessProbe": {"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 5}}]}`, true},
		{"no decision", `{}`, true},
		{"unknown key", `{"hostNetwork": true}`, false},
		{"unknown key deep", `{"tolerations": [{"key": "k", "tolerationSecond": 5}]}`, false},
		{"key in another case", `{"NodeSelector": {"a": "b"}}`, false},
		{"null", `{"localDirs": null, "rules": ["x"]}`, false},
		{"fraction into an integer", `{"tolerations": [{"key": "k", "tolerationSeconds": 1.5}]}`, false},
		{"integer too large", `{"topologySpreadConstraints": [{"maxSkew": 4294967296}]}`, false},
		{"number as a label", `{"labels": {"a": 1}}`, false},
		{"list as a string", `{"schedulerName": ["a"]}`, false},
		{"bad quantity", `{"initContainers": [{"name": "c", "resources": {"limits": {"cpu": "lots"}}}]}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := ast.MustParseTerm(tc.value).Value
			var d placement.Decision
			if got := setValue(v, reflect.ValueOf(&d).Elem()); got != tc.direct {
				t.Errorf("setValue took it: %v, want %v", got, tc.direct)
			}
			compareDecodings(t, v)
		})
	}
}

// compareDecodings checks that decodeDecision gives v the decision, or the error, of the JSON path.
func compareDecodings(t *testing.T, v ast.Value) {
	t.Helper()
	got, err := decodeDecision(v)
	want, wantErr := decodeDecisionJSON(v)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Errorf("%v: error %v, the JSON path's %v", v, err, wantErr)
	} else if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%v: decision (+) differs from the JSON path's (-):\n%s", v, diff)
	}
}
