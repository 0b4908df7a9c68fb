package submit

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Release is what a releaseLabel stands for: the Spark image and the Spark version inside it. The version
// decides which labels Spark's own code would put on the pods (spark-app-name and spark-version since 3.3).
type Release struct {
	Image        string `json:"image"`
	SparkVersion string `json:"sparkVersion,omitempty"`
}

// ReleaseTable resolves releaseLabel to an image. Exact entries win over the two built-in patterns:
//   - spark-X.Y.Z → apache/spark:X.Y.Z (the official image);
//   - emr-X.Y.Z-latest and emr-X.Y.Z-YYYYMMDD → EMR on EKS's image in the region's ECR,
//     <account>.dkr.ecr.<region>.amazonaws.com/spark/emr-X.Y.Z:<latest|YYYYMMDD>.
type ReleaseTable struct {
	// Entries maps a release label to its image. Defaults to none: the patterns cover the usual labels.
	Entries map[string]Release `json:"entries,omitempty"`
	// Region picks EMR's ECR registry for emr-* labels. Defaults to us-east-1.
	Region string `json:"region,omitempty"`
	// RegistryAccount overrides the ECR account that hosts EMR's images (needed for regions not in
	// emrImageAccounts, or for a mirror). Defaults to the account AWS documents for Region.
	RegistryAccount string `json:"registryAccount,omitempty"`
}

// emrImageAccounts are the ECR accounts AWS documents for EMR on EKS base images, per region.
var emrImageAccounts = map[string]string{
	"us-east-1":      "755674844232",
	"us-east-2":      "711395599931",
	"us-west-1":      "608033475327",
	"us-west-2":      "895885662937",
	"ca-central-1":   "351826393999",
	"eu-west-1":      "483788554619",
	"eu-west-2":      "118780647275",
	"eu-west-3":      "307523725174",
	"eu-central-1":   "107292555468",
	"eu-north-1":     "830386416364",
	"ap-south-1":     "235914868574",
	"ap-northeast-1": "059004520145",
	"ap-northeast-2": "996579266876",
	"ap-southeast-1": "671219180197",
	"ap-southeast-2": "038297999601",
	"sa-east-1":      "052806832358",
}

// emrSparkVersions is the Spark each EMR release ships (EMR release notes). A release missing here is
// assumed to carry a current Spark.
var emrSparkVersions = map[string]string{
	"5.32.0": "2.4.7", "5.33.0": "2.4.7", "5.34.0": "2.4.8", "5.35.0": "2.4.8", "5.36.0": "2.4.8",
	"6.2.0": "3.0.1", "6.3.0": "3.1.1", "6.4.0": "3.1.2", "6.5.0": "3.1.2", "6.6.0": "3.2.0",
	"6.7.0": "3.2.1", "6.8.0": "3.3.0", "6.9.0": "3.3.0", "6.10.0": "3.3.1", "6.11.0": "3.3.2",
	"6.12.0": "3.4.0", "6.13.0": "3.4.1", "6.14.0": "3.4.1", "6.15.0": "3.4.1",
	"7.0.0": "3.5.0", "7.1.0": "3.5.0", "7.2.0": "3.5.1", "7.3.0": "3.5.1", "7.4.0": "3.5.2",
	"7.5.0": "3.5.2", "7.6.0": "3.5.3", "7.7.0": "3.5.3", "7.8.0": "3.5.4", "7.9.0": "3.5.5",
}

var (
	sparkLabel = regexp.MustCompile(`^spark-([0-9]+\.[0-9]+\.[0-9]+)$`)
	emrLabel   = regexp.MustCompile(`^emr-([0-9]+\.[0-9]+\.[0-9]+)-(latest|[0-9]{8})$`)
)

// Resolve returns the release for label, or a *ValidationError naming what is accepted.
func (t ReleaseTable) Resolve(label string) (Release, error) {
	if r, ok := t.Entries[label]; ok {
		return r, nil
	}
	if m := sparkLabel.FindStringSubmatch(label); m != nil {
		return Release{Image: "apache/spark:" + m[1], SparkVersion: m[1]}, nil
	}
	if m := emrLabel.FindStringSubmatch(label); m != nil {
		if _, known := emrSparkVersions[m[1]]; !known && t.RegistryAccount == "" {
			return Release{}, invalidf("releaseLabel %q: EMR release %s is not one sparkplace knows; nearest: %s (or add it to the release table)",
				label, m[1], strings.Join(nearestEMRLabels(m[1], m[2]), ", "))
		}
		region := t.Region
		if region == "" {
			region = "us-east-1"
		}
		account := t.RegistryAccount
		if account == "" {
			account = emrImageAccounts[region]
		}
		if account == "" {
			return Release{}, invalidf("releaseLabel %q: no known EMR image registry for region %q; set the registry account", label, region)
		}
		return Release{
			Image:        fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com/spark/emr-%s:%s", account, region, m[1], m[2]),
			SparkVersion: emrSparkVersions[m[1]],
		}, nil
	}
	known := make([]string, 0, len(t.Entries))
	for k := range t.Entries {
		known = append(known, k)
	}
	sort.Strings(known)
	accepted := "spark-X.Y.Z, emr-X.Y.Z-latest, emr-X.Y.Z-YYYYMMDD"
	if len(known) > 0 {
		accepted += ", " + strings.Join(known, ", ")
	}
	return Release{}, invalidf("unknown releaseLabel %q (accepted: %s; or set spark.kubernetes.container.image)", label, accepted)
}

// nearestEMRLabels are the three known EMR releases closest to version, as labels with the same suffix.
func nearestEMRLabels(version, suffix string) []string {
	rank := func(v string) int {
		var a, b, c int
		fmt.Sscanf(v, "%d.%d.%d", &a, &b, &c)
		return a*10000 + b*100 + c
	}
	want := rank(version)
	known := make([]string, 0, len(emrSparkVersions))
	for v := range emrSparkVersions {
		known = append(known, v)
	}
	sort.Slice(known, func(i, j int) bool {
		di, dj := abs(rank(known[i])-want), abs(rank(known[j])-want)
		if di != dj {
			return di < dj
		}
		return rank(known[i]) > rank(known[j])
	})
	var out []string
	for _, v := range known[:min(3, len(known))] {
		out = append(out, "emr-"+v+"-"+suffix)
	}
	return out
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// sparkAtLeast reports whether version is at least major.minor; an unknown version counts as current.
func sparkAtLeast(version string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(version, "%d.%d", &ma, &mi); err != nil {
		return true
	}
	return ma > major || (ma == major && mi >= minor)
}
