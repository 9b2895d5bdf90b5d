/**
 * The TrentService JSON API as an adapter of the shared request pipeline (src/pipeline/run.ts):
 * POST <path> with X-Amz-Target, SigV4 for service "kms" with the kmsApi credentials, errors in KMS's
 * {"__type","message"} shape. One log line, one metric and one audit entry per request; plaintext,
 * data keys and secrets are never logged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OperationServices } from '../api/operations/context';
import { Deadline } from '../hsm';
import { accessKeyIdLabel, type AccessKeyIdLabelMode } from '../observability/access-key-label';
import type { Logger } from '../observability/logger';
import type { XksMetrics } from '../observability/metrics';
import type { InFlightRequests } from '../pipeline/admission';
import { RequestContext, type LogFields } from '../pipeline/context';
import type { RequestSinks } from '../pipeline/record';
import { runPipeline, type ProtocolAdapter } from '../pipeline/run';
import type { KmsContext } from './context';
import { KmsError, toKmsError } from './errors';
import type { Body } from './input';
import { KMS_OPERATIONS } from './operations/registry';
import type { KmsOperationEntry } from './operations/operation';
import type { KmsApiState } from './state';

/** 4 KB plaintext and 6 KB blobs in base64, an 8 K-character context, and room for the rest. */
const MAX_BODY_BYTES = 64 * 1024;
const TARGET = /^TrentService\.([A-Za-z]{1,64})$/;

export interface KmsHandlerDeps {
  /** The KMS API's part of the current config generation; undefined while the API is off. */
  state(): KmsApiState | undefined;
  services: OperationServices;
  logger: Logger;
  metrics: XksMetrics;
  audit?: { record(fields: Record<string, unknown>): void };
  /** The process's in-flight count, shared with the XKS API (limits.maxInFlightRequests). */
  inFlight: InFlightRequests;
  /** admin.accessKeyIdLabel (restart-only): how throttled access keys are labelled in metrics. */
  accessKeyIdLabel: AccessKeyIdLabelMode;
  /** Written with every answer (helmet's captured policy), as a flat [name, value, ...] list. */
  headers?: readonly string[];
}

/** The X-Amz-Target operation, when it is one this endpoint serves. */
interface KmsTarget {
  name: string | undefined;
  operation: KmsOperationEntry | undefined;
}

type Ctx = RequestContext<KmsTarget, KmsApiState>;

/** Takes the request (true) when it is for the KMS API; the pipeline then answers it. */
export type KmsApi = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

export function createKmsHandler(deps: KmsHandlerDeps, onCrash: (res: ServerResponse) => void): KmsApi {
  const { services, metrics } = deps;
  const sinks: RequestSinks = { metrics, logger: deps.logger, ...(deps.audit ? { audit: deps.audit } : {}) };
  const adapter: ProtocolAdapter<KmsTarget, KmsApiState> = {
    logMessage: 'kms api request',
    contentType: 'application/x-amz-json-1.1',
    headers: deps.headers ?? [],
    sinks,
    inFlight: deps.inFlight,
    toWireError: toKmsError,
    setErrorHeaders(ctx, error) {
      ctx.res.setHeader('x-amzn-ErrorType', error.wireName);
    },
    inFlightLimit: (ctx) => ctx.state.maxInFlightRequests,
    admissionWaitMs: (ctx) => ctx.state.admissionWaitMs,
    maxBodyBytes: () => MAX_BODY_BYTES,
    methodMessage: () => 'The KMS API accepts only POST',
    checkRoute() {},
    verifier: (ctx) => ctx.state.verifier,
    secrets: (ctx) => ctx.state.secrets,
    admitCaller(ctx) {
      const { api, quotas } = ctx.state;
      if (ctx.region !== api.region) throw new KmsError('InvalidSignatureException', `Credential should be scoped to a valid region (${api.region})`);
      const credential = api.credentials.get(ctx.accessKeyId)!;
      // After the signature, so nobody but the credential's holder can spend its quota.
      if (!quotas.tryTake(ctx.accessKeyId, credential)) {
        ctx.fields.throttled = 'credential quota';
        metrics.kmsApiThrottled.inc(accessKeyIdLabel(deps.accessKeyIdLabel, ctx.accessKeyId));
        throw new KmsError('ThrottlingException', `The request rate of access key ${ctx.accessKeyId} exceeds its quota of ${credential.throttle?.requestsPerSecond} requests/s; retry later`);
      }
      if (!ctx.route.operation) throw new KmsError('UnknownOperationException', 'The X-Amz-Target operation is not supported by this endpoint');
    },
    checkContentType(ctx, type) {
      if (type !== 'application/x-amz-json-1.1' && type !== 'application/x-amz-json-1.0') {
        throw new KmsError('SerializationException', 'Content-Type must be application/x-amz-json-1.1');
      }
      const document = ctx.document;
      if (typeof document !== 'object' || document === null || Array.isArray(document)) {
        throw new KmsError('SerializationException', 'The request body is not a JSON object in UTF-8 (or repeats a member name)');
      }
    },
    handle(ctx) {
      const { api, store } = ctx.state;
      if (!store) throw new KmsError('KMSInternalException', 'The configured key store is missing');
      const credential = api.credentials.get(ctx.accessKeyId)!;
      const kms: KmsContext = {
        services, config: api, store, credential, deadline: ctx.deadline, fields: ctx.fields, accessKeyId: ctx.accessKeyId, region: ctx.region,
      };
      const operation = ctx.route.operation!;
      return operation.handle(kms, operation.input(ctx.document as Body, kms));
    },
  };

  return (req, res, path) => {
    const state = deps.state();
    const target = req.headers['x-amz-target'];
    if (!state || path !== state.api.path || typeof target !== 'string') return false;
    const name = TARGET.exec(target)?.[1];
    const operation = name === undefined ? undefined : KMS_OPERATIONS.get(name);
    const fields: LogFields = {
      api: 'kms',
      operation: operation ? `TrentService.${name}` : 'TrentService.Unknown',
      keyStore: state.api.keyStore,
      remoteAddress: req.socket.remoteAddress,
    };
    const deadline = Deadline.after(state.requestDeadlineMs);
    const ctx: Ctx = new RequestContext(req, res, { name, operation }, state, fields.operation as string, state.api.keyStore, deadline, fields);
    runPipeline(adapter, ctx, onCrash);
    return true;
  };
}
