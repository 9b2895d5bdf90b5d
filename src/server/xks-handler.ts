/**
 * The XKS request pipeline: route -> method -> raw body -> SigV4 -> JSON + schema -> operation -> response.
 * Every outcome is a spec error body or a result, logged once as one line and counted once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { XksError } from '../api/errors';
import { hsmReturnCodeOf, toXksError } from '../api/hsm-errors';
import { parseStrictJson } from '../api/strict-json';
import type { OperationServices } from '../api/operations/context';
import { decrypt } from '../api/operations/decrypt';
import { encrypt } from '../api/operations/encrypt';
import { getHealthStatus } from '../api/operations/get-health-status';
import { getKeyMetadata } from '../api/operations/get-key-metadata';
import type { RequestValidators } from '../api/schemas';
import type { SigV4FailureReason, SigV4Verifier } from '../auth/sigv4';
import { Deadline } from '../hsm/deadline';
import { HsmError } from '../hsm/errors';
import { batched, type Logger } from '../observability/logger';
import type { XksMetrics } from '../observability/metrics';
import type { RequestGuards } from '../security/request-guards';
import { BodyTooLargeError, readRawBody } from './body';
import { overloadMessage, type InFlightRequests } from './in-flight';
import { writeJson } from './json-response';
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
  /** Each request's budget (limits.requestDeadlineMs), counted from arrival; default 200 ms. */
  requestDeadlineMs?: number;
  /** limits.maxInFlightRequests: beyond it, requests other than GetHealthStatus are shed early. */
  maxInFlightRequests?: number;
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

/** requestMetadata fields worth logging (spec: SHOULD log them); copied only when they are strings. */
const LOGGED_METADATA = ['kmsRequestId', 'kmsOperation', 'awsPrincipalArn', 'kmsKeyArn', 'kmsViaService', 'awsSourceVpc', 'awsSourceVpce'] as const;
const MAX_LOGGED_FIELD = 2048;

/** What the client is told about a failed signature. Unknown keys read as a mismatch: no key-ID probing. */
const AUTH_MESSAGES: Record<SigV4FailureReason, string> = {
  MissingAuthorization: 'The request is not signed: the Authorization header is missing',
  MalformedAuthorization: 'The Authorization header is not a valid AWS SigV4 header',
  UnsupportedAlgorithm: 'Only AWS4-HMAC-SHA256 signatures are accepted',
  MissingSignedHeader: 'The signature must cover the host and x-amz-date headers',
  MalformedDate: 'The x-amz-date header is missing or malformed',
  RequestExpired: 'The request time is more than 5 minutes away from the proxy clock',
  ScopeMismatch: 'The credential scope does not match the request date or the kms-xks-proxy service',
  UnknownAccessKey: 'The request signature does not match',
  PayloadHashMismatch: 'The x-amz-content-sha256 header does not match the body',
  SignatureMismatch: 'The request signature does not match',
};

type LogFields = Record<string, string | number | undefined>;

export function createXksHandler(deps: XksHandlerDeps) {
  const { inFlight } = deps;
  const headers = (deps.securityHeaders ?? []).flat();

  return async function handleXks(req: IncomingMessage, res: ServerResponse, next: () => void): Promise<void> {
    const state = deps.state();
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const route = state.router.match(queryAt === -1 ? url : url.slice(0, queryAt));
    if (!route) {
      next();
      return;
    }
    const started = process.hrtime.bigint();
    const deadline = Deadline.after(state.requestDeadlineMs ?? 200);
    const fields: LogFields = { operation: route.operation, keyStore: route.store.name };
    if (route.externalKeyId) fields.externalKeyId = route.externalKeyId.slice(0, 128);
    fields.remoteAddress = req.socket.remoteAddress;

    let status = 200;
    let errorName = '';
    // Shed before the costly part (SigV4, parsing, the HSM): an overloaded proxy would otherwise
    // spend its CPU on requests that time out anyway, and answer none in time.
    const limit = state.maxInFlightRequests ?? Number.POSITIVE_INFINITY;
    const counted = route.operation !== 'GetHealthStatus'; // KMS must keep seeing the HSMs' health
    const admitted = counted && inFlight.tryAdmit(limit);
    const shed = counted && !admitted;
    try {
      if (shed) {
        await readRawBody(req, state.maxBodyBytes); // read, so the connection stays usable
        throw new XksError('ThrottlingException', overloadMessage(limit));
      }
      const result = await run(state, route, req, fields, deadline);
      writeJson(res, 200, result, 'application/json', headers);
    } catch (err) {
      const error = err instanceof BodyTooLargeError
        ? new XksError('UnsupportedOperationException', `The request body exceeds the ${err.limit}-byte maximum this proxy supports`)
        : toXksError(err);
      if (!(err instanceof XksError) && !(err instanceof BodyTooLargeError) && error.errorName === 'InternalException') {
        fields.internalError = (err as Error)?.message?.slice(0, 200);
      }
      if (error.cause instanceof HsmError) fields.hsmError = error.cause.message.slice(0, 300);
      const returnCode = hsmReturnCodeOf(error);
      if (returnCode) fields.hsmReturnCode = returnCode;
      status = error.status;
      errorName = error.errorName;
      fields.errorMessage = error.message;
      if (err instanceof BodyTooLargeError) res.setHeader('Connection', 'close');
      if (status === 405) res.setHeader('Allow', 'POST');
      writeJson(res, status, error.toBody(), 'application/json', headers);
    } finally {
      if (admitted) inFlight.release();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      fields.status = status;
      if (errorName) fields.errorName = errorName;
      fields.latencyMs = Math.round(seconds * 1e6) / 1e3;
      deps.metrics.request(route.operation, route.store.name, status, errorName, seconds);
      if (fields.hsmReturnCode) deps.metrics.hsmRequestError(route.operation, fields.hsmReturnCode as string);
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      deps.logger.log(level, 'xks request', batched(fields));
      deps.audit?.record(fields);
    }
  };

  async function run(state: XksPipelineState, route: XksRoute, req: IncomingMessage, fields: LogFields, deadline: Deadline): Promise<unknown> {
    if (req.method !== 'POST') {
      // Spec: a GET (or any non-POST) on an XKS URI MUST get 405 Method Not Allowed.
      throw new XksError('UnsupportedOperationException', `${route.operation} accepts only POST`, 405);
    }
    if (route.operation !== 'GetHealthStatus' && !isValidExternalKeyId(route.externalKeyId)) {
      throw new XksError('ValidationException', 'externalKeyId must be 1-128 characters of A-Z a-z 0-9 . - _');
    }
    const body = await readRawBody(req, state.maxBodyBytes);

    const auth = state.verifier.verify(
      { method: req.method, url: req.url ?? '/', rawHeaders: req.rawHeaders, body },
      (accessKeyId) => route.store.credentials.get(accessKeyId),
    );
    if (auth.accessKeyId) fields.accessKeyId = auth.accessKeyId.slice(0, 64);
    if (!auth.ok) {
      fields.authFailure = auth.reason;
      fields.authDetail = auth.detail;
      deps.metrics.authFailures.inc({ key_store: route.store.name, reason: auth.reason });
      throw new XksError('AuthenticationFailedException', AUTH_MESSAGES[auth.reason]);
    }
    fields.region = auth.region;
    state.guards?.admit(route, auth, req, fields);

    const document = parseJson(body);
    copyLoggedMetadata(document, fields);

    // GetHealthStatus checks only its two REQUIRED metadata fields: no Content-Type, quota or authorization.
    if (route.operation !== 'GetHealthStatus' && !isJsonContentType(req.headers['content-type'])) {
      throw new XksError('ValidationException', 'Content-Type must be application/json');
    }
    if (document === undefined) throw new XksError('ValidationException', 'The request body is not valid JSON (or repeats a member name)');
    if (route.operation === 'GetHealthStatus') {
      state.validators.GetHealthStatus(document);
      return getHealthStatus(deps.services);
    }

    const request = { store: route.store, externalKeyId: route.externalKeyId, deadline };
    // Secondary authorization runs on validated metadata, before the HSM is touched.
    const authorize = (metadata: { awsPrincipalArn: string; kmsOperation: string }): void =>
      state.guards?.authorize(route, { metadata, region: auth.region, accessKeyId: auth.accessKeyId, ...(typeof fields.tlsClient === 'string' ? { tlsClientName: fields.tlsClient } : {}) }, fields);
    switch (route.operation) {
      case 'GetKeyMetadata': {
        const validated = state.validators.GetKeyMetadata(document);
        authorize(validated.requestMetadata);
        return getKeyMetadata(deps.services, { ...request, body: validated });
      }
      case 'Encrypt': {
        const validated = state.validators.Encrypt(document);
        authorize(validated.requestMetadata);
        return encrypt(deps.services, { ...request, body: validated });
      }
      case 'Decrypt': {
        const validated = state.validators.Decrypt(document);
        authorize(validated.requestMetadata);
        return decrypt(deps.services, { ...request, body: validated });
      }
    }
  }
}

/** undefined for invalid JSON, and for duplicate member names (see strict-json.ts). */
function parseJson(body: Buffer): unknown {
  const parsed = parseStrictJson(body.toString('utf8'));
  return parsed.ok ? parsed.value : undefined;
}

function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const type = header.split(';', 1)[0]?.trim().toLowerCase();
  return type === 'application/json';
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
