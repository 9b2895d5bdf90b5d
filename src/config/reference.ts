/** Renders the config reference (Markdown) from the schema, so the document cannot drift from validation. */
import { RESTART_ONLY_FIELDS } from './restart-only';
import { ConfigSchema } from './schema';

const RESTART_ONLY: ReadonlySet<string> = new Set(RESTART_ONLY_FIELDS);
const RESTART_ONLY_NOTE = 'Restart-only: a reload keeps the running value and reports the change (restartRequired).';

type JsonSchema = {
  type?: string;
  description?: string;
  default?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  maxLength?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  const?: unknown;
};

function typeOf(schema: JsonSchema): string {
  if (schema.anyOf) return schema.anyOf.map((s) => (s.const !== undefined ? JSON.stringify(s.const) : typeOf(s))).join(' \\| ');
  if (schema.type === 'array') return `list of ${schema.items ? typeOf(schema.items) : 'values'}`;
  return schema.type ?? 'any';
}

function constraints(schema: JsonSchema): string {
  const parts: string[] = [];
  if (schema.pattern) parts.push(`pattern \`${schema.pattern}\``);
  if (schema.minimum !== undefined) parts.push(`min ${schema.minimum}`);
  if (schema.maximum !== undefined) parts.push(`max ${schema.maximum}`);
  if (schema.minItems !== undefined) parts.push(`at least ${schema.minItems}`);
  if (schema.maxItems !== undefined) parts.push(`at most ${schema.maxItems}`);
  if (schema.maxLength !== undefined) parts.push(`at most ${schema.maxLength} chars`);
  return parts.join(', ');
}

function rows(schema: JsonSchema, prefix: string, out: string[]): void {
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const path = `${prefix}${name}`;
    const required = schema.required?.includes(name) ? 'yes' : '';
    const def = child.default === undefined || typeof child.default === 'object' ? '' : `\`${JSON.stringify(child.default)}\``;
    const description = (child.description ?? '').replace(/\|/g, '\\|');
    const restartOnly = RESTART_ONLY.has(path) ? RESTART_ONLY_NOTE : '';
    out.push(`| \`${path}\` | ${typeOf(child)} | ${required} | ${def} | ${[description, restartOnly, constraints(child)].filter(Boolean).join(' ')} |`);
    if (child.type === 'object') rows(child, `${path}.`, out);
    if (child.type === 'array' && child.items?.type === 'object') rows(child.items, `${path}[].`, out);
  }
}

export function renderConfigReference(): string {
  const out = [
    '# Configuration reference',
    '',
    'Generated from `src/config/schema.ts` by `npm run docs:config`; a test fails when this file is stale.',
    'The file is YAML (JSON works too). Relative paths are resolved against the config file\'s folder.',
    'Secrets (the HSM PIN, SigV4 secrets) can come from environment variables or files; the PIN never inline.',
    'A reload (SIGHUP, or a change to the config file or a file it names) applies every setting except those marked',
    'Restart-only, and everything under them: those keep their running values until the process restarts.',
    '',
    '| Field | Type | Required | Default | Description |',
    '|---|---|---|---|---|',
  ];
  rows(ConfigSchema as unknown as JsonSchema, '', out);
  return `${out.join('\n')}\n`;
}
