/**
 * Loads a Cedar policy file: parse, validate against the Xks schema in strict mode (errors point to
 * file:line:column), name each policy (its @id annotation, else <file>:<line>) and preparse the set
 * inside the Cedar engine so each decision skips parsing.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type * as Cedar from '@cedar-policy/cedar-wasm/nodejs';
import { CEDAR_SCHEMA } from './cedar-schema';

export interface CompiledPolicySet {
  file: string;
  /** Key of the preparsed set inside the Cedar engine (content hash: reloading the same text reuses it). */
  engineId: string;
  /** Policy IDs in file order. */
  policyIds: string[];
  /** Validator warnings (e.g. a policy that can never apply), already located. */
  warnings: string[];
  /** False when no policy mentions context.kmsRequestId: decisions then depend only on the rest (PolicyAuthorizer memoises them). */
  readsRequestId?: boolean;
}

export type CompileResult = { ok: true; value: CompiledPolicySet } | { ok: false; errors: string[] };

let engine: typeof Cedar | undefined;

/** The Cedar WASM engine, loaded on first use: it costs most of a second, paid only with policies configured. */
export function cedarEngine(): typeof Cedar {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  engine ??= require('@cedar-policy/cedar-wasm/nodejs') as typeof Cedar;
  return engine;
}

export const SCHEMA_ENGINE_ID = `xks-schema-${createHash('sha256').update(CEDAR_SCHEMA).digest('hex').slice(0, 16)}`;
/** A Cedar schema policies are validated against: the Xks one by default, the Kms one for the KMS API (issue #8). */
export interface CedarSchemaRef {
  text: string;
  engineId: string;
}
export const XKS_SCHEMA: CedarSchemaRef = { text: CEDAR_SCHEMA, engineId: SCHEMA_ENGINE_ID };
const readySchemas = new Set<string>();

function ensureSchema(schema: CedarSchemaRef): void {
  if (readySchemas.has(schema.engineId)) return;
  const answer = cedarEngine().preparseSchema(schema.engineId, schema.text);
  if (answer.type !== 'success') throw new Error(`built-in Cedar schema does not parse: ${answer.errors.map((e) => e.message).join('; ')}`);
  readySchemas.add(schema.engineId);
}

/** 1-based line and column of a byte offset (Cedar reports UTF-8 byte offsets). */
export function lineAndColumn(text: string, byteOffset: number): { line: number; column: number } {
  const before = Buffer.from(text, 'utf8').subarray(0, Math.max(0, byteOffset)).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: (lines[lines.length - 1] ?? '').length + 1 };
}

function describe(text: string, file: string, error: Cedar.DetailedError): string {
  const at = error.sourceLocations?.[0];
  const where = at ? (({ line, column }) => `${file}:${line}:${column}`)(lineAndColumn(text, at.start)) : file;
  const label = at?.label ? ` (${at.label})` : '';
  const help = error.help ? `; ${error.help}` : '';
  return `${where}: ${error.message}${label}${help}`;
}

export function compilePolicies(text: string, file: string, schema: CedarSchemaRef = XKS_SCHEMA): CompileResult {
  ensureSchema(schema);
  const validation = cedarEngine().validate({ schema: schema.text, policies: { staticPolicies: text }, validationSettings: { mode: 'strict' } });
  if (validation.type === 'failure') return { ok: false, errors: validation.errors.map((e) => describe(text, file, e)) };
  if (validation.validationErrors.length > 0) {
    return { ok: false, errors: validation.validationErrors.map((e) => describe(text, file, e.error)) };
  }
  const warnings = validation.validationWarnings.map((w) => describe(text, file, w.error));

  const parts = cedarEngine().policySetTextToParts(text);
  if (parts.type === 'failure') return { ok: false, errors: parts.errors.map((e) => describe(text, file, e)) };
  if (parts.policy_templates.length > 0) return { ok: false, errors: [`${file}: policy templates are not supported; write static policies`] };

  const name = basename(file);
  // Null prototype: an @id("toString") or @id("__proto__") is an ID like any other.
  const policies: Record<string, string> = Object.create(null) as Record<string, string>;
  const policyIds: string[] = [];
  const errors: string[] = [];
  let cursor = 0;
  for (const part of parts.policies) {
    const found = text.indexOf(part, cursor);
    const offset = found === -1 ? cursor : found;
    if (found !== -1) cursor = found + part.length;
    const line = lineAndColumn(text, Buffer.byteLength(text.slice(0, offset))).line;
    const json = cedarEngine().policyToJson(part);
    const annotated = json.type === 'success' ? json.json.annotations?.['id'] : undefined;
    const id = annotated ?? `${name}:${line}`;
    if (policies[id] !== undefined) {
      errors.push(`${name}:${line}: duplicate policy @id("${id}")`);
      continue;
    }
    policies[id] = part;
    policyIds.push(id);
  }
  if (errors.length > 0) return { ok: false, errors };
  if (policyIds.length === 0) warnings.push(`${file}: contains no policy, so every request of this key store is denied`);

  const engineId = `xks-policies-${createHash('sha256').update(JSON.stringify(policies)).digest('hex').slice(0, 32)}`;
  const preparsed = cedarEngine().preparsePolicySet(engineId, { staticPolicies: policies });
  if (preparsed.type !== 'success') return { ok: false, errors: preparsed.errors.map((e) => describe(text, file, e)) };
  return { ok: true, value: { file, engineId, policyIds, warnings, readsRequestId: text.includes('kmsRequestId') } };
}

