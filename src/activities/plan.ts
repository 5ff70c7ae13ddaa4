// The plan as the worker loaded it. Workflows read it through this activity so that the plan a
// run acted on is recorded in its history (the plan holds names of secrets, never secrets).
import type { Plan } from '../domain/plan.ts';

export function createPlanActivities(deps: { plan: Plan }) {
  return {
    /** The validated plan this worker runs with. */
    describePlan(): Promise<Plan> {
      return Promise.resolve(deps.plan);
    },
  };
}
