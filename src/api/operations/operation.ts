import type { Static, TSchema } from '@sinclair/typebox';
import type { AsciiJson } from '../../common/ascii-json';
import type { RequestLimits } from '../schema-parts';
import type { OperationRequest, OperationServices } from './context';

/**
 * One XKS operation, as the registry (registry.ts) lists it: the router, the validators, the
 * authorizer's operation type and the Cedar action list are all derived from these entries.
 */
export interface XksOperationSpec<Name extends string, Schema extends TSchema, Result, Probe extends boolean = boolean> {
  name: Name;
  /**
   * Its URI under /kms/xks/v1/: `{ keySegment: 'encrypt' }` for keys/{externalKeyId}/encrypt, or
   * `{ path: 'health' }` for a key-less one.
   */
  route: { keySegment: string } | { path: string };
  /** The request body's schema for the configured limits (compiled once per config generation). */
  schema(limits: RequestLimits): Schema;
  /**
   * A probe KMS must always get through (GetHealthStatus): never shed, no quota, no Content-Type
   * check, never authorized. Every other operation is a Cedar action of its own name.
   */
  probe: Probe;
  handle(services: OperationServices, request: OperationRequest<Static<Schema>>): Promise<Result> | Result;
  /**
   * The result as the answer's JSON text, for a result of Base64 strings only (base64Json): kilobytes
   * of ciphertext then skip JSON.stringify's escape scan. Without it, the answer is JSON.stringify's.
   */
  encodeResult?(result: Result): AsciiJson;
}

/** Keeps an entry's literal name and schema type, so types derived from the registry stay exact. */
export function xksOperation<Name extends string, Schema extends TSchema, Result, Probe extends boolean>(
  spec: XksOperationSpec<Name, Schema, Result, Probe>,
): XksOperationSpec<Name, Schema, Result, Probe> {
  return spec;
}
