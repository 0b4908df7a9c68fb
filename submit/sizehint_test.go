package submit

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSizeHint(t *testing.T) {
	cases := map[string]struct {
		props   map[string]string
		want    map[string]string
		wantErr string
	}{
		"Spark's defaults": {
			props: map[string]string{},
			want:  map[string]string{AnnotationExecutors: "2", AnnotationExecutorCPU: "1", AnnotationExecutorMemory: "1408Mi"},
		},
		"instances, cores and memory with the 10% overhead": {
			props: map[string]string{"spark.executor.instances": "8", "spark.executor.cores": "4", "spark.executor.memory": "14g"},
			want:  map[string]string{AnnotationExecutors: "8", AnnotationExecutorCPU: "4", AnnotationExecutorMemory: "15769Mi"},
		},
		"request cores, explicit overhead and PySpark memory": {
			props: map[string]string{
				"spark.executor.cores": "4", "spark.kubernetes.executor.request.cores": "3500m",
				"spark.executor.memory": "4g", "spark.executor.memoryOverhead": "1g", "spark.executor.pyspark.memory": "512m",
			},
			want: map[string]string{AnnotationExecutors: "2", AnnotationExecutorCPU: "3500m", AnnotationExecutorMemory: "5632Mi"},
		},
		"dynamic allocation starts with the largest of min, initial and instances": {
			props: map[string]string{
				"spark.dynamicAllocation.enabled": "true", "spark.dynamicAllocation.minExecutors": "3",
				"spark.dynamicAllocation.initialExecutors": "6", "spark.dynamicAllocation.maxExecutors": "50",
			},
			want: map[string]string{AnnotationExecutors: "6", AnnotationExecutorCPU: "1", AnnotationExecutorMemory: "1408Mi"},
		},
		"a bad count": {
			props:   map[string]string{"spark.executor.instances": "many"},
			wantErr: `spark.executor.instances="many" must be a whole number of executors`,
		},
		"a bad overhead factor": {
			props:   map[string]string{"spark.executor.memoryOverheadFactor": "-1"},
			wantErr: `spark.executor.memoryOverheadFactor="-1" must be a positive number`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := sizeHint(tc.props)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("sizeHint() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("sizeHint() (-want +got):\n%s", diff)
			}
		})
	}
}
