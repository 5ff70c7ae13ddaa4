// Workflow inputs are validated where they arrive, inside the workflow, so a start from the
// `temporal` CLI with bad JSON fails with the path of every problem.
import { z } from 'zod';

export const doctorInputSchema = z.strictObject({
  requestedBy: z.string().min(1).max(200).optional(),
  databases: z.array(z.string().min(1)).min(1).optional(),
});
