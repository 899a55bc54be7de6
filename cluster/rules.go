package cluster

import (
	"fmt"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/placement"
)

// Explain is `vmha explain VM`: the engine's reasoning for one VM on the
// cluster as it is now.
func (c *Coordinator) Explain(vm string) (*placement.Explanation, error) {
	st := c.n.fsm.Copy()
	if st.Config.VMs[vm] == nil {
		return nil, &NotFoundError{Kind: "vm", Name: vm}
	}
	in, err := decide.EngineInput(c.n.view(st, c.n.members()))
	if err != nil {
		return nil, err
	}
	r, err := placement.Solve(in, placement.Options{Explain: []string{vm}})
	if err != nil {
		return nil, err
	}
	ex := r.Explanations[vm]
	if ex == nil {
		return nil, fmt.Errorf("the engine gave no explanation for %s", vm)
	}
	return ex, nil
}
