package clusterspec

import (
	"fmt"
	"strings"

	"github.com/vmha/vmha/placement"
)

// The node-health-strategy values (Pacemaker's).
const (
	HealthNone         = "none"
	HealthMigrateOnRed = "migrate-on-red"
	HealthOnlyGreen    = "only-green"
	HealthProgressive  = "progressive"
	HealthCustom       = "custom"
)

// HealthAttrPrefix starts every node-health attribute (Pacemaker sums the
// attributes whose names start with "#health").
const HealthAttrPrefix = "#health"

// HealthHoldAttr is vmha's own health attribute: the worst health that
// sent a host's VMs away, kept (a permanent host attribute the leader
// sets) until an operator clears it, so that nothing returns to the host
// by itself (docs/health.md). It counts as a health attribute.
const HealthHoldAttr = "health-hold"

// HealthPolicy is a cluster's node-health policy with Pacemaker's values
// for the strategy filled in.
type HealthPolicy struct {
	Strategy                 string
	Base, Green, Yellow, Red placement.Score
	// Manual recovery holds a host whose health sent VMs away
	// (HealthHoldAttr); auto does not.
	Manual bool
}

// Health is the policy's node-health settings as placement applies them,
// as Pacemaker does: none ignores health; migrate-on-red scores red
// -INFINITY and yellow and green 0; only-green scores red and yellow
// -INFINITY; progressive and custom use node-health-red/yellow/green
// (defaults -INFINITY, 0, 0), and progressive adds node-health-base.
func (p Policy) Health() HealthPolicy {
	h := HealthPolicy{Strategy: p.NodeHealthStrategy, Red: -placement.Infinity, Manual: p.NodeHealthRecovery != "auto"}
	if h.Strategy == "" {
		h.Strategy = HealthNone
	}
	switch h.Strategy {
	case HealthMigrateOnRed:
	case HealthOnlyGreen:
		h.Yellow = -placement.Infinity
	case HealthProgressive, HealthCustom:
		if p.NodeHealthRed != nil {
			h.Red = placement.Score(*p.NodeHealthRed)
		}
		if p.NodeHealthYellow != nil {
			h.Yellow = placement.Score(*p.NodeHealthYellow)
		}
		if p.NodeHealthGreen != nil {
			h.Green = placement.Score(*p.NodeHealthGreen)
		}
		if h.Strategy == HealthProgressive && p.NodeHealthBase != nil {
			h.Base = placement.Score(*p.NodeHealthBase)
		}
	default:
		h.Red = 0
	}
	return h
}

func (p Policy) validateHealth() error {
	switch p.NodeHealthStrategy {
	case "", HealthNone, HealthMigrateOnRed, HealthOnlyGreen, HealthProgressive, HealthCustom:
	default:
		return fmt.Errorf("policy: node-health-strategy %q: want none, migrate-on-red, only-green, progressive or custom", p.NodeHealthStrategy)
	}
	switch p.NodeHealthRecovery {
	case "", "manual", "auto":
	default:
		return fmt.Errorf("policy: node-health-recovery %q: want manual or auto", p.NodeHealthRecovery)
	}
	return nil
}

// LevelScore is the score of one health attribute's value: red, yellow or
// green (any case), an integer score (INFINITY too), else 0.
func (h HealthPolicy) LevelScore(v string) placement.Score {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "red":
		return h.Red
	case "yellow":
		return h.Yellow
	case "green":
		return h.Green
	}
	s, err := placement.ParseScore(strings.TrimSpace(v))
	if err != nil {
		return 0
	}
	return s
}

// Score is a host's health score from its attributes: the sum, with
// Pacemaker's arithmetic, of every #health* attribute's score (and the
// hold's), plus node-health-base under progressive. Under none it is 0.
func (h HealthPolicy) Score(attrs map[string]string) placement.Score {
	if h.Strategy == HealthNone {
		return 0
	}
	sum := h.Base
	for k, v := range attrs {
		if strings.HasPrefix(k, HealthAttrPrefix) || k == HealthHoldAttr {
			sum = placement.Add(sum, h.LevelScore(v))
		}
	}
	return sum
}

// Apply adds the health scores to in as location scores of every VM on
// every host whose score is not 0, as Pacemaker's scheduler does before it
// unpacks the constraints: a -INFINITY host (red under migrate-on-red) is
// left by its VMs, live when they can move live.
func (h HealthPolicy) Apply(in *placement.Input) {
	if h.Strategy == HealthNone {
		return
	}
	for _, host := range in.Hosts {
		s := h.Score(host.Attributes)
		if s == 0 {
			continue
		}
		for _, vm := range in.VMs {
			in.Locations = append(in.Locations, placement.Location{VM: vm.Name, Host: host.Name, Score: s})
		}
	}
}
