/**
 * The XKS API as an adapter of the shared request pipeline (src/pipeline/run.ts): its routes, its
 * checks, its operation registry (src/api/operations/registry.ts) and its wire format. Every outcome
 * is a spec error body or a result, logged once as one line and counted once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toXksError, XksError } from '../api/errors';
import type { OperationRequest, OperationServices } from '../api/operations/context';
import type { RequestValidators } from '../api/schemas';
import type { AuthorizationInput } from '../authz/authorizer';
import type { SigV4Verifier } from '../auth/sigv4';
import type { AsciiJson } from '../common/ascii-json';
import { ProxyError } from '../core/errors';
import { Deadline } from '../hsm';
import type { Logger } from '../observability/logger';
import type { XksMetrics } from '../observability/metrics';
import type { InFlightRequests } from '../pipeline/admission';
import { RequestContext, type LogFields } from '../pipeline/context';
import type { RequestSinks } from '../pipeline/record';
import { runPipeline, type ProtocolAdapter } from '../pipeline/run';
import type { KmsApiState } from '../kms-api/state';
import type { RequestGuards } from '../security/request-guards';
import { isValidExternalKeyId, type XksRoute, type XksRouter } from './routes';
import type { HeaderList } from './security-headers';

/** What a reload replaces; read once per request so a request sees one config generation. */
export interface XksPipelineState {
  router: XksRouter;
  verifier: SigV4Verifier;
  validators: RequestValidators;
  maxBodyBytes: number;
  /** Region pin, quota and Cedar authorization per key store. */
  guards?: RequestGuards;
  /** Each request's budget (limits.requestDeadlineMs), counted from arrival. */
  requestDeadlineMs: number;
  /** limits.maxInFlightRequests: beyond it, requests other than GetHealthStatus are shed once their body is in, before SigV4. */
  maxInFlightRequests: number;
  /** limits.admissionWaitMs: how long a request at that limit may wait for a slot. */
  admissionWaitMs: number;
  /** The KMS API's part of the same generation (verifier, quotas, Cedar policies); undefined while it is off. */
  kmsApi?: KmsApiState | undefined;
}

export interface XksHandlerDeps {
  state(): XksPipelineState;
  services: OperationServices;
  logger: Logger;
  metrics: XksMetrics;
  /** Hash-chained audit log: one entry per XKS request. */
  audit?: { record(fields: Record<string, unknown>): void };
  /** The process's in-flight count, shared with the KMS API. */
  inFlight: InFlightRequests;
  /** Written with every XKS response (helmet's captured policy, see security-headers.ts). */
  securityHeaders?: HeaderList;
}

/** Takes the request (true) when its path is an XKS route; the pipeline then answers it. */
export type XksApi = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

type XksContext = RequestContext<XksRoute, XksPipelineState>;

export const BUDGET_SPENT_MESSAGE = "The request's time budget ran out before the HSM was asked";

/** requestMetadata fields worth logging (spec: SHOULD log them); copied only when they are strings. */
const LOGGED_METADATA = ['kmsRequestId', 'kmsOperation', 'awsPrincipalArn', 'kmsKeyArn', 'kmsViaService', 'awsSourceVpc', 'awsSourceVpce'] as const;
const MAX_LOGGED_FIELD = 2048;

type Handle = (services: OperationServices, request: OperationRequest<unknown>) => unknown;

export function createXksHandler(deps: XksHandlerDeps, onCrash: (res: ServerResponse) => void): XksApi {
  const { services } = deps;
  const sinks: RequestSinks = { metrics: deps.metrics, logger: deps.logger, ...(deps.audit ? { audit: deps.audit } : {}) };
  const adapter: ProtocolAdapter<XksRoute, XksPipelineState> = {
    logMessage: 'xks request',
    contentType: 'application/json',
    headers: (deps.securityHeaders ?? []).flat(),
    sinks,
    inFlight: deps.inFlight,
    toWireError: toXksError,
    setErrorHeaders(ctx, error) {
      if (error.status === 405) ctx.res.setHeader('Allow', 'POST');
    },
    // KMS must keep seeing the HSMs' health: a probe is never shed.
    inFlightLimit: (ctx) => (ctx.route.entry.probe ? undefined : ctx.state.maxInFlightRequests),
    admissionWaitMs: (ctx) => ctx.state.admissionWaitMs,
    maxBodyBytes: (ctx) => ctx.state.maxBodyBytes,
    methodMessage: (ctx) => `${ctx.operation} accepts only POST`,
    checkRoute(ctx) {
      if (!ctx.route.entry.probe && !isValidExternalKeyId(ctx.route.externalKeyId)) {
        throw new XksError('ValidationException', 'externalKeyId must be 1-128 characters of A-Z a-z 0-9 . - _');
      }
    },
    verifier: (ctx) => ctx.state.verifier,
    secrets: (ctx) => ctx.route.secrets,
    admitCaller(ctx) {
      ctx.tlsClient = ctx.state.guards?.admit(ctx.route, ctx, ctx.req.socket, ctx.fields);
    },
    parsed: (ctx) => copyLoggedMetadata(ctx.document, ctx.fields),
    checkContentType(ctx, type) {
      // A probe checks only its two REQUIRED metadata fields: no Content-Type, quota or authorization.
      if (!ctx.route.entry.probe && type !== 'application/json') throw new XksError('ValidationException', 'Content-Type must be application/json');
      if (ctx.document === undefined) throw new XksError('ValidationException', 'The request body is not valid JSON in UTF-8 (or repeats a member name)');
    },
    handle(ctx) {
      const { route, state } = ctx;
      const { entry } = route;
      // Spent before the HSM is asked (a slow body, an admission wait): still 503, which KMS retries
      // (a slow event loop looks the same from here), but not blamed on the HSM.
      if (!entry.probe && ctx.deadline.expired()) throw new ProxyError('DependencyTimeout', BUDGET_SPENT_MESSAGE);
      const body = state.validators[entry.name](ctx.document);
      // Secondary authorization runs on validated metadata, before the HSM is touched.
      if (!entry.probe) authorize(ctx, (body as { requestMetadata: AuthorizationInput['metadata'] }).requestMetadata);
      return (entry.handle as Handle)(services, { store: route.store, externalKeyId: route.externalKeyId, deadline: ctx.deadline, body });
    },
    encodeResult: (ctx, result) => (ctx.route.entry.encodeResult as ((result: unknown) => AsciiJson) | undefined)?.(result),
  };

  return (req, res, path) => {
    const state = deps.state();
    const route = state.router.match(path);
    if (!route) return false;
    const fields: LogFields = { operation: route.operation, keyStore: route.store.name };
    if (route.externalKeyId) fields.externalKeyId = route.externalKeyId.slice(0, 128);
    fields.remoteAddress = req.socket.remoteAddress;
    const deadline = Deadline.after(state.requestDeadlineMs);
    const ctx: XksContext = new RequestContext(req, res, route, state, route.operation, route.store.name, deadline, fields);
    runPipeline(adapter, ctx, onCrash);
    return true;
  };
}

function authorize(ctx: XksContext, metadata: AuthorizationInput['metadata']): void {
  const guards = ctx.state.guards;
  if (!guards) return;
  const caller = { metadata, region: ctx.region, accessKeyId: ctx.accessKeyId, ...(ctx.tlsClient !== undefined ? { tlsClientName: ctx.tlsClient } : {}) };
  guards.authorize(ctx.route, caller, ctx.fields);
}

function copyLoggedMetadata(document: unknown, fields: LogFields): void {
  if (typeof document !== 'object' || document === null) return;
  const metadata = (document as { requestMetadata?: unknown }).requestMetadata;
  if (typeof metadata !== 'object' || metadata === null) return;
  for (const name of LOGGED_METADATA) {
    const value = (metadata as Record<string, unknown>)[name];
    if (typeof value === 'string') fields[name] = value.slice(0, MAX_LOGGED_FIELD);
  }
}
