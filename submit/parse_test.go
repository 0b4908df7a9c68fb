package submit

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitShellWords(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    []string
		wantErr string
	}{
		"the re:Invent pi.py parameters, wrapped across lines": {
			in:   "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf\nspark.executor.cores=2",
			want: []string{"--conf", "spark.executor.instances=2", "--conf", "spark.executor.memory=2G", "--conf", "spark.executor.cores=2"},
		},
		"double quotes keep java options together": {
			in:   `--conf "spark.driver.extraJavaOptions=-XX:+UseG1GC -Dlog4j.configuration=log4j.properties"`,
			want: []string{"--conf", "spark.driver.extraJavaOptions=-XX:+UseG1GC -Dlog4j.configuration=log4j.properties"},
		},
		"single quotes are literal": {
			in:   `--conf 'spark.app.name=a "quoted" $name'`,
			want: []string{"--conf", `spark.app.name=a "quoted" $name`},
		},
		"escapes inside double quotes and outside": {
			in:   `--name "say \"hi\"" --files a\ b.txt`,
			want: []string{"--name", `say "hi"`, "--files", "a b.txt"},
		},
		"quotes join adjacent text": {
			in:   `--conf spark.x="a b"c`,
			want: []string{"--conf", "spark.x=a bc"},
		},
		"empty quoted word survives": {in: `--name ""`, want: []string{"--name", ""}},
		"line continuation":          {in: "--class A \\\n--name b", want: []string{"--class", "A", "--name", "b"}},
		"unterminated quote":         {in: `--conf "spark.x=1`, wantErr: "unterminated \" quote"},
		"trailing backslash":         {in: `--conf spark.x=1\`, wantErr: "trailing backslash"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := splitShellWords(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("words (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSubmitParameters(t *testing.T) {
	got, err := parseSubmitParameters(`--class org.example.Etl --name "nightly etl" --jars s3://b/a.jar,s3://b/b.jar ` +
		`--files s3://b/f.conf --py-files s3://b/dep.zip --archives s3://b/env.tar.gz#env --packages org.apache.hadoop:hadoop-aws:3.3.4 ` +
		`--driver-memory 4g --driver-cores 2 --executor-memory=8g --executor-cores 4 --num-executors 10 ` +
		`-c spark.sql.shuffle.partitions=400 --conf=spark.eventLog.enabled=true --verbose`)
	if err != nil {
		t.Fatal(err)
	}
	want := &submitOptions{
		mainClass: "org.example.Etl",
		conf:      []keyValue{{"spark.sql.shuffle.partitions", "400"}, {"spark.eventLog.enabled", "true"}},
		options: map[string]string{
			"spark.app.name":           "nightly etl",
			"spark.jars":               "s3://b/a.jar,s3://b/b.jar",
			"spark.files":              "s3://b/f.conf",
			"spark.submit.pyFiles":     "s3://b/dep.zip",
			"spark.archives":           "s3://b/env.tar.gz#env",
			"spark.jars.packages":      "org.apache.hadoop:hadoop-aws:3.3.4",
			"spark.driver.memory":      "4g",
			"spark.driver.cores":       "2",
			"spark.executor.memory":    "8g",
			"spark.executor.cores":     "4",
			"spark.executor.instances": "10",
		},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(submitOptions{}, keyValue{})); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
}

func TestParseMiB(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    int64
		wantErr string
	}{
		"gibibytes upper case": {in: "12G", want: 12288},
		"mebibytes":            {in: "512m", want: 512},
		"no unit means MiB":    {in: "2048", want: 2048},
		"kibibytes round down": {in: "1536k", want: 1},
		"long unit":            {in: "1gb", want: 1024},
		"bytes":                {in: "1073741824b", want: 1024},
		"fractional":           {in: "1.5g", wantErr: "fractional values are not supported"},
		"words":                {in: "4 GB", wantErr: "is not a memory size"},
		"unknown unit":         {in: "4x", wantErr: `unknown size unit "x"`},
		"empty":                {in: "", wantErr: "is not a memory size"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := parseMiB("spark.driver.memory", tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !IsValidation(err) {
					t.Fatalf("err = %v, want validation error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseMiB(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestJavaPropertiesEscaping(t *testing.T) {
	got := javaProperties("c", submittedAt, map[string]string{
		"spark.master":                  "k8s://https://kubernetes.default.svc",
		"spark.driver.extraJavaOptions": " -Da=b #c!",
		"spark.app.name":                "Zürich\tjob",
	})
	want := "#c\n#Tue Nov 30 10:00:00 UTC 2021\n" +
		`spark.app.name=Z\u00FCrich\tjob` + "\n" +
		`spark.driver.extraJavaOptions=\ -Da\=b \#c\!` + "\n" +
		`spark.master=k8s\://https\://kubernetes.default.svc` + "\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("properties (-want +got):\n%s", diff)
	}
}

func TestReleaseTable(t *testing.T) {
	cases := map[string]struct {
		table   ReleaseTable
		label   string
		want    Release
		wantErr string
	}{
		"official Spark image": {label: "spark-3.5.3", want: Release{Image: "apache/spark:3.5.3", SparkVersion: "3.5.3"}},
		"EMR latest in the default region": {
			label: "emr-7.6.0-latest",
			want:  Release{Image: "755674844232.dkr.ecr.us-east-1.amazonaws.com/spark/emr-7.6.0:latest", SparkVersion: "3.5.3"},
		},
		"EMR dated tag in us-west-2": {
			table: ReleaseTable{Region: "us-west-2"}, label: "emr-6.3.0-20210802",
			want: Release{Image: "895885662937.dkr.ecr.us-west-2.amazonaws.com/spark/emr-6.3.0:20210802", SparkVersion: "3.1.1"},
		},
		"table entry wins": {
			table: ReleaseTable{Entries: map[string]Release{"spark-3.5.3": {Image: "registry.local/spark:3.5.3-py", SparkVersion: "3.5.3"}}},
			label: "spark-3.5.3", want: Release{Image: "registry.local/spark:3.5.3-py", SparkVersion: "3.5.3"},
		},
		"region without a known registry": {table: ReleaseTable{Region: "mars-1"}, label: "emr-7.0.0-latest", wantErr: "no known EMR image registry"},
		"unknown label":                   {label: "spark3", wantErr: `unknown releaseLabel "spark3"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := tc.table.Resolve(tc.label)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("release (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownEMRReleaseSuggestsTheNearest(t *testing.T) {
	_, err := ReleaseTable{}.Resolve("emr-9.99.0-latest")
	if !IsValidation(err) || !strings.Contains(err.Error(), "nearest: emr-7.9.0-latest, emr-7.8.0-latest, emr-7.7.0-latest") {
		t.Errorf("err = %v, want the nearest known labels", err)
	}
	if _, err := (ReleaseTable{}).Resolve("emr-6.3.0-20210802"); err != nil {
		t.Errorf("a known release with a date tag: %v", err)
	}
}
