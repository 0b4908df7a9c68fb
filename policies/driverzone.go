package policies

import (
	"bytes"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
)

// DriverZone is what the webhook needs of config driverZone to choose a driver's zone (zone.topologyKey is in
// ZoneConfig); the policy decides what to do with the choice. It is read when a version loads, so a bad value
// fails the load rather than every admission.
type DriverZone struct {
	// Enabled is driverZone.enabled: false skips the capacity index entirely.
	Enabled bool `json:"enabled"`
	// Weight is driverZone.weight, the preferred term's weight (1-100).
	Weight int `json:"weight"`
	// ReservationSeconds is driverZone.reservationSeconds.
	ReservationSeconds int `json:"reservationSeconds"`
	// DefaultExecutor is driverZone.defaultExecutor: one executor's requests when the driver gives none.
	DefaultExecutor ExecutorSize `json:"defaultExecutor"`
	// Zones is driverZone.zones: weights or capacity hints for fleets scaled to zero.
	Zones map[string]ZoneHint `json:"zones"`
	// ProfileLabel is profileLabel, the pod and namespace label that picks the profile.
	ProfileLabel string `json:"-"`
}

// ExecutorSize is one executor's CPU and memory requests.
type ExecutorSize struct {
	CPU    resource.Quantity `json:"cpu"`
	Memory resource.Quantity `json:"memory"`
}

// ZoneHint configures one zone of a fleet scaled to zero: a weight, or the capacity the autoscaler can bring.
type ZoneHint struct {
	Weight int                `json:"weight,omitempty"`
	CPU    *resource.Quantity `json:"cpu,omitempty"`
	Memory *resource.Quantity `json:"memory,omitempty"`
}

// DriverZone returns this version's driver zone settings.
func (v *Version) DriverZone() DriverZone { return v.driverZone }

func parseDriverZone(config map[string]any) (DriverZone, error) {
	var dz DriverZone
	raw, err := json.Marshal(config["driverZone"])
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err = dec.Decode(&dz)
	}
	if err != nil {
		return dz, fmt.Errorf("config driverZone: %w", err)
	}
	if dz.Weight < 1 || dz.Weight > 100 {
		return dz, fmt.Errorf("config driverZone.weight: %d is outside 1-100", dz.Weight)
	}
	if dz.ReservationSeconds < 0 {
		return dz, fmt.Errorf("config driverZone.reservationSeconds: %d is negative", dz.ReservationSeconds)
	}
	for zone, h := range dz.Zones {
		if h.Weight < 0 {
			return dz, fmt.Errorf("config driverZone.zones.%s.weight: %d is negative", zone, h.Weight)
		}
	}
	dz.ProfileLabel, _ = config["profileLabel"].(string)
	return dz, nil
}
