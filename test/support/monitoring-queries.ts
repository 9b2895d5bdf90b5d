/** The PromQL the shipped Grafana dashboard and Prometheus rules run, read from deploy/. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export const DEPLOY = join(__dirname, '../../../deploy');
export const RULES_FILE = join(DEPLOY, 'prometheus/xks-proxy.rules.yaml');

export interface Query {
  where: string;
  expr: string;
}

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
}

/** Every panel target, and the metric each query variable takes its label values from. */
export function dashboardQueries(): { panels: Query[]; variables: Array<Query & { label: string }> } {
  const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana/xks-proxy-dashboard.json'), 'utf8'));
  const panels: Query[] = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) panels.push({ where: `dashboard panel "${panel.title}" ${target.refId}`, expr: target.expr });
  }
  const variables: Array<Query & { label: string }> = [];
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    const labelValues = /^label_values\((\w+),\s*(\w+)\)$/.exec(variable.query?.query ?? '');
    if (!labelValues) throw new Error(`dashboard variable ${variable.name}: not label_values(metric, label)`);
    variables.push({ where: `dashboard variable ${variable.name}`, expr: labelValues[1]!, label: labelValues[2]! });
  }
  return { panels, variables };
}

export function rules(): Rule[] {
  const doc = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ ...r, expr: String(r.expr) })));
}

export function ruleQueries(): { queries: Query[]; recorded: Set<string> } {
  const all = rules();
  return {
    queries: all.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr })),
    recorded: new Set(all.flatMap((r) => (r.record ? [r.record] : []))),
  };
}
