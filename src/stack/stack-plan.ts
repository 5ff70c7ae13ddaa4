// The plan of a running stack: examples/lifeboat.yaml with the layout's ports and absolute
// paths, written to `<state>/lifeboat.yaml` by `stack up`. With the default layout it says the
// same as the example (a test holds them together); with a port offset it is what a second
// stack on the same machine is described by.
import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { STACK_REGIONS, type StackLayout } from './layout.ts';
import { CHECKOUT_ROOT } from './prerequisites.ts';

export const EXAMPLE_PLAN_FILE = path.join(CHECKOUT_ROOT, 'examples', 'lifeboat.yaml');

export function renderStackPlan(
  layout: StackLayout,
  exampleText = fs.readFileSync(EXAMPLE_PLAN_FILE, 'utf8'),
): string {
  const doc = parseDocument(exampleText);
  for (const region of STACK_REGIONS) {
    doc.setIn(['regions', region, 'postgres', 'port'], layout.postgres[region].port);
    doc.setIn(['regions', region, 'kubernetes', 'kubeconfig'], layout.kubernetes[region].kubeconfig);
  }
  doc.setIn(['storage', 'primary', 'endpoint'], layout.s3.endpoint);
  doc.setIn(['storage', 'primary', 'caFile'], layout.tls.caCert);
  doc.setIn(['storage', 'encryption', 'recipientsFile'], layout.ageRecipientsFile);
  doc.setIn(['dns', 'endpoint'], layout.route53.endpoint);
  doc.commentBefore = ` Written by \`lifeboat stack up\` for the stack in ${layout.state} (port offset ${layout.portOffset}),\n from examples/lifeboat.yaml. Do not edit: it is rewritten on every up.`;
  return doc.toString();
}

/** Writes the stack's plan; returns its path. */
export function writeStackPlan(layout: StackLayout): string {
  fs.mkdirSync(layout.state, { recursive: true });
  const tmp = `${layout.planFile}.tmp`;
  fs.writeFileSync(tmp, renderStackPlan(layout));
  fs.renameSync(tmp, layout.planFile);
  return layout.planFile;
}
