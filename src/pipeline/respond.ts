import { hsmReturnCodeOf, ProxyError, toProxyError } from '../core/errors';
import { HsmError } from '../hsm';
import { CLIENT_CLOSED_NAME, CLIENT_CLOSED_STATUS, ClientClosedError } from './body';
import type { RequestContext } from './context';
import { writeJson } from './json-response';

/** What both protocols' errors (XksError, KmsError) offer the error-mapping step. */
export interface WireError extends Error {
  readonly status: number;
  /** errorName (XKS) or __type (KMS). */
  readonly wireName: string;
  toBody(): unknown;
}

/** How one protocol answers: its content type, its headers, and its one error table. */
export interface WireFormat {
  readonly contentType: string;
  /** Written with every answer, as a flat [name, value, ...] list (helmet's captured policy). */
  readonly headers: readonly string[];
  toWireError(err: unknown): WireError;
  /** Protocol-specific headers of an error answer (set before the one writeHead). */
  setErrorHeaders?(ctx: RequestContext<unknown, unknown>, error: WireError): void;
}

/** The success answer (a result, or its JSON text: see writeJson): one writeHead with the protocol's headers. */
export function answer(ctx: RequestContext<unknown, unknown>, format: WireFormat, result: unknown): void {
  writeJson(ctx.res, 200, result, format.contentType, format.headers);
}

/**
 * The error-mapping step: maps anything thrown through the protocol's table, records what the log
 * line needs (the HSM's return code, an unexpected error's message: never request data), answers.
 */
export function answerError(ctx: RequestContext<unknown, unknown>, format: WireFormat, err: unknown): void {
  const { fields, res } = ctx;
  if (err instanceof ClientClosedError) {
    ctx.status = CLIENT_CLOSED_STATUS;
    ctx.errorName = CLIENT_CLOSED_NAME;
    fields.errorMessage = err.message;
    // Nobody is there to read an answer; a connection whose request broke off cannot carry another.
    res.destroy();
    return;
  }
  const error = format.toWireError(err);
  // An unexpected error (not a wire or domain error) answered as an internal one: its message helps, capped.
  if (err !== error && !(err instanceof ProxyError) && toProxyError(err).kind === 'Internal' && typeof (err as Error | undefined)?.message === 'string') {
    fields.internalError = (err as Error).message.slice(0, 200);
  }
  if (error.cause instanceof HsmError) fields.hsmError = error.cause.message.slice(0, 300);
  const returnCode = hsmReturnCodeOf(error);
  if (returnCode) fields.hsmReturnCode = returnCode;
  ctx.status = error.status;
  ctx.errorName = error.wireName;
  fields.errorMessage = error.message;
  // The rest of an oversized or coded body is never read: the connection cannot carry another request.
  if (err instanceof ProxyError && (err.kind === 'BodyTooLarge' || err.kind === 'UnsupportedTransferCoding')) res.setHeader('Connection', 'close');
  format.setErrorHeaders?.(ctx, error);
  writeJson(res, error.status, error.toBody(), format.contentType, format.headers);
}
