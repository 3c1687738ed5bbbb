package manifeststest

import (
	"context"
	"fmt"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/templateresolution"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
)

// templates serves a build's WorkflowTemplates to Argo's validator, as the
// controller's informer would.
type templates []*wfv1.WorkflowTemplate

func (ts templates) Get(name string) (*wfv1.WorkflowTemplate, error) {
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("no WorkflowTemplate %s in the build", name)
}

// TestArgoValidates runs Argo Workflows' own validation (the one `argo
// lint` and the controller apply) over every WorkflowTemplate,
// CronWorkflow and Workflow: template references, DAG and steps structure,
// and every {{...}} tag resolving to a parameter, step output or workflow
// variable that exists where it is used.
func TestArgoValidates(t *testing.T) {
	objs := build(t, prod)
	wts := templates(all[*wfv1.WorkflowTemplate](objs))
	if len(wts) == 0 {
		t.Fatalf("%s: no WorkflowTemplate", prod)
	}
	clusterTemplates := &templateresolution.NullClusterWorkflowTemplateGetter{}
	for _, wt := range wts {
		if err := validate.ValidateWorkflowTemplate(wts, clusterTemplates, wt, nil, validate.ValidateOpts{Lint: true}); err != nil {
			t.Errorf("WorkflowTemplate %s: %v", wt.Name, err)
		}
	}
	for _, cw := range all[*wfv1.CronWorkflow](objs) {
		if err := validate.ValidateCronWorkflow(context.Background(), wts, clusterTemplates, cw, nil); err != nil {
			t.Errorf("CronWorkflow %s: %v", cw.Name, err)
		}
	}
	for _, f := range looseFiles {
		for _, wf := range all[*wfv1.Workflow](loadFile(t, f)) {
			if err := validate.ValidateWorkflow(wts, clusterTemplates, wf, nil, validate.ValidateOpts{Lint: true, Submit: true}); err != nil {
				t.Errorf("%s: Workflow %s: %v", f, wf.Name, err)
			}
		}
	}
	broken := wts[0].DeepCopy()
	for i := range broken.Spec.Templates {
		if c := broken.Spec.Templates[i].Container; c != nil {
			c.Args = append(c.Args, "--log-level={{steps.nowhere.outputs.result}}")
		}
	}
	if validate.ValidateWorkflowTemplate(wts, clusterTemplates, broken, nil, validate.ValidateOpts{Lint: true}) == nil {
		t.Error("Argo's validation passed a tag that resolves to nothing")
	}
}
