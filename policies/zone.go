package policies

import (
	"fmt"
	"time"
)

// ZoneMode is config zone.mode: how strictly executors are held to their application's zone.
type ZoneMode string

const (
	// ZoneStrict always pins with a required term; executors wait as long as the zone has no room.
	ZoneStrict ZoneMode = "strict"
	// ZoneBounded pins with a required term, relaxed once executors waited on it longer than the bound. The default.
	ZoneBounded ZoneMode = "bounded"
	// ZonePreferred only prefers the zone.
	ZonePreferred ZoneMode = "preferred"
)

// MaxZoneBound is the largest zone.bound: past it Spark itself deletes and requests again a pending executor
// (spark.kubernetes.allocation.executor.timeout, 600 s by default).
const MaxZoneBound = 10 * time.Minute

// ZoneConfig is data.sparkplace.config.zone, which the webhook needs besides the policy: the label to read
// from nodes, and how long executors may wait on a zone pin.
type ZoneConfig struct {
	TopologyKey string
	Mode        ZoneMode
	// Bound is how long executors may be unschedulable on the zone pin before it is relaxed (mode bounded).
	Bound time.Duration
}

// parseZoneConfig reads config.zone, so a bad mode or bound fails the load rather than every admission.
func parseZoneConfig(config map[string]any) (ZoneConfig, error) {
	zone, _ := config["zone"].(map[string]any)
	var z ZoneConfig
	z.TopologyKey, _ = zone["topologyKey"].(string)
	if z.TopologyKey == "" {
		return z, fmt.Errorf("config zone.topologyKey: want a node label key")
	}
	mode, _ := zone["mode"].(string)
	switch z.Mode = ZoneMode(mode); z.Mode {
	case ZoneStrict, ZoneBounded, ZonePreferred:
	default:
		return z, fmt.Errorf("config zone.mode %q: want strict, bounded or preferred", mode)
	}
	bound, _ := zone["bound"].(string)
	d, err := time.ParseDuration(bound)
	if err != nil || d < time.Second || d > MaxZoneBound {
		return z, fmt.Errorf("config zone.bound %q: want a duration from 1s to %s, e.g. 2m", bound, MaxZoneBound)
	}
	z.Bound = d
	return z, nil
}

// Zone is this version's zone configuration.
func (v *Version) Zone() ZoneConfig { return v.zone }
