/**
 * The one request pipeline both APIs share. Each step is a plain function over one RequestContext;
 * a protocol adapter (src/server/xks-handler.ts, src/kms-api/handler.ts) supplies only what differs:
 * its routes, its checks, its operations and its wire format. Adapters are built once, not per request.
 */
import type { ServerResponse } from 'node:http';
import type { SecretLookup, SigV4Verifier } from '../auth/sigv4';
import type { AsciiJson } from '../common/ascii-json';
import { ProxyError } from '../core/errors';
import { admit, checkClientStayed, release, shed, type InFlightRequests } from './admission';
import { ClientClosedError, collectRawBody } from './body';
import type { RequestContext } from './context';
import { mediaType } from './content-type';
import { parseBody } from './parse';
import { recordOutcome, type RequestSinks } from './record';
import { answer, answerError, type WireFormat } from './respond';
import { authenticate } from './signature';

export interface ProtocolAdapter<Route, State> extends WireFormat {
  /** The log line's message. */
  readonly logMessage: string;
  readonly sinks: RequestSinks;
  /** The process's in-flight count, shared by both APIs. */
  readonly inFlight: InFlightRequests;
  /** limits.maxInFlightRequests for this request; undefined for one that is neither counted nor shed. */
  inFlightLimit(ctx: RequestContext<Route, State>): number | undefined;
  /** limits.admissionWaitMs: how long a request at the limit may wait for a slot. */
  admissionWaitMs(ctx: RequestContext<Route, State>): number;
  maxBodyBytes(ctx: RequestContext<Route, State>): number;
  /** Message for a method other than POST. */
  methodMessage(ctx: RequestContext<Route, State>): string;
  /** Before the body is read: what the route alone can refuse. */
  checkRoute(ctx: RequestContext<Route, State>): void;
  verifier(ctx: RequestContext<Route, State>): SigV4Verifier;
  secrets(ctx: RequestContext<Route, State>): SecretLookup;
  /** After SigV4, before the body is parsed: region pin, quota, the operation's existence. */
  admitCaller(ctx: RequestContext<Route, State>): void;
  /** After parsing: e.g. copy requestMetadata to the log line. */
  parsed?(ctx: RequestContext<Route, State>): void;
  /** Refuses the request's Content-Type (a media type, lower-cased) if the operation needs another. */
  checkContentType(ctx: RequestContext<Route, State>, type: string): void;
  /** Validate, authorize and run the operation (the protocol's operation registry). */
  handle(ctx: RequestContext<Route, State>): unknown;
  /** The result as the answer's JSON text, when the operation builds it itself; else JSON.stringify's. */
  encodeResult?(ctx: RequestContext<Route, State>, result: unknown): AsciiJson | undefined;
}

/** audit.onFailure "refuse": no operation runs that could not be audited. */
export const AUDIT_UNAVAILABLE = 'The audit log cannot be written; requests are refused until it can (audit.onFailure: refuse)';

/**
 * method -> route checks -> body -> admission -> SigV4 -> caller checks -> JSON -> Content-Type ->
 * audit file writable (onFailure "refuse") -> validate, authorize, handle -> answer (or error mapping) -> release -> metrics, log line, audit.
 * `onCrash` answers when even the error answer or the outcome's record threw: nothing a client
 * sends should get there.
 */
export function runPipeline<Route, State>(adapter: ProtocolAdapter<Route, State>, ctx: RequestContext<Route, State>, onCrash: (res: ServerResponse) => void): void {
  try {
    if (ctx.req.method !== 'POST') throw new ProxyError('MethodNotAllowed', adapter.methodMessage(ctx));
    adapter.checkRoute(ctx);
    collectRawBody(ctx.req, adapter.maxBodyBytes(ctx), (err, body) => {
      if (err !== undefined) answerFailure(adapter, ctx, err, onCrash);
      else void afterBody(adapter, ctx, body, onCrash);
    });
  } catch (err) {
    answerFailure(adapter, ctx, err, onCrash);
  }
}

/** The steps once the body is in; its promise never rejects. */
async function afterBody<Route, State>(adapter: ProtocolAdapter<Route, State>, ctx: RequestContext<Route, State>, body: Buffer, onCrash: (res: ServerResponse) => void): Promise<void> {
  try {
    ctx.body = body;
    // Admission after the body (bounded, and cut off by server.requestTimeoutMs): a client that stalls
    // mid-request costs its own connection only, never one of the slots real requests need.
    const limit = adapter.inFlightLimit(ctx);
    const admitted = admit(ctx, adapter.inFlight, limit, adapter.admissionWaitMs(ctx));
    if (admitted !== true) {
      if (!(await admitted)) shed(limit);
      checkClientStayed(ctx);
    }
    authenticate(ctx, adapter.verifier(ctx), adapter.secrets(ctx), adapter.sinks.metrics);
    adapter.admitCaller(ctx);
    parseBody(ctx);
    adapter.parsed?.(ctx);
    adapter.checkContentType(ctx, mediaType(ctx.req.headers['content-type']));
    if (adapter.sinks.audit?.accepting?.() === false) throw new ProxyError('Internal', AUDIT_UNAVAILABLE);
    const pending = adapter.handle(ctx);
    // A result already there (GetHealthStatus) is answered in this turn, not after a microtask hop.
    const result = pending instanceof Promise ? await pending : pending;
    // Gone while the operation ran (KMS gives up after 250 ms): no one receives this success.
    if (ctx.req.socket.destroyed) throw new ClientClosedError('The connection closed before the answer was ready');
    answer(ctx, adapter, adapter.encodeResult?.(ctx, result) ?? result);
  } catch (err) {
    answerFailure(adapter, ctx, err, onCrash);
    return;
  }
  try {
    finish(adapter, ctx);
  } catch {
    onCrash(ctx.res);
  }
}

/** A request refused or failed at any step: its error answer, then the same release and record. */
function answerFailure<Route, State>(adapter: ProtocolAdapter<Route, State>, ctx: RequestContext<Route, State>, err: unknown, onCrash: (res: ServerResponse) => void): void {
  try {
    try {
      answerError(ctx, adapter, err);
    } finally {
      finish(adapter, ctx);
    }
  } catch {
    onCrash(ctx.res);
  }
}

/** Release the in-flight slot, then count, log and audit the outcome: once per request. */
function finish<Route, State>(adapter: ProtocolAdapter<Route, State>, ctx: RequestContext<Route, State>): void {
  release(ctx, adapter.inFlight);
  recordOutcome(ctx, adapter.sinks, adapter.logMessage);
}
