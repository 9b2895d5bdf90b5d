/**
 * The TrentService JSON pipeline: POST <path> with X-Amz-Target -> raw body -> SigV4 (service "kms",
 * the kmsApi credentials) -> JSON -> operation. One log line, one metric and one audit entry per
 * request; errors in KMS's {"__type","message"} shape. Plaintext, data keys and secrets are never logged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseStrictJson } from '../api/strict-json';
import type { OperationServices } from '../api/operations/context';
import { SigV4Verifier, type SigV4FailureReason } from '../auth/sigv4';
import type { RuntimeConfig } from '../config/runtime';
import { Deadline } from '../hsm';
import { batched, type Logger } from '../observability/logger';
import { accessKeyIdLabel } from '../observability/access-key-label';
import type { XksMetrics } from '../observability/metrics';
import { BodyTooLargeError, readRawBody } from '../server/body';
import { writeJson } from '../server/json-response';
import { overloadMessage, type InFlightRequests } from '../server/in-flight';
import type { KmsContext } from './context';
import { KmsError, toKmsError, type KmsErrorName } from './errors';
import type { Body } from './input';
import { decrypt } from './operations/decrypt';
import { describeKey } from './operations/describe-key';
import { encrypt } from './operations/encrypt';
import { generateDataKey, generateDataKeyWithoutPlaintext } from './operations/generate-data-key';
import { generateRandom } from './operations/generate-random';
import { listAliases, listKeys } from './operations/list';
import { reEncrypt } from './operations/re-encrypt';
import { CredentialQuotas } from './quotas';

/** A Map, not an object: an X-Amz-Target suffix like toString or constructor must not find Object.prototype's members. */
type Operation = (ctx: KmsContext, body: Body) => Promise<unknown>;
export const KMS_OPERATIONS: ReadonlyMap<string, Operation> = new Map<string, Operation>([
  ['Encrypt', encrypt],
  ['Decrypt', decrypt],
  ['ReEncrypt', reEncrypt],
  ['GenerateDataKey', generateDataKey],
  ['GenerateDataKeyWithoutPlaintext', generateDataKeyWithoutPlaintext],
  ['GenerateRandom', generateRandom],
  ['DescribeKey', describeKey],
  ['ListKeys', listKeys],
  ['ListAliases', listAliases],
]);

/** 4 KB plaintext and 6 KB blobs in base64, an 8 K-character context, and room for the rest. */
const MAX_BODY_BYTES = 64 * 1024;

const AUTH_ERRORS: Record<SigV4FailureReason, [KmsErrorName, string]> = {
  MissingAuthorization: ['MissingAuthenticationTokenException', 'Missing Authentication Token'],
  MalformedAuthorization: ['IncompleteSignature', 'The Authorization header is not a valid AWS SigV4 header'],
  UnsupportedAlgorithm: ['IncompleteSignature', 'Only AWS4-HMAC-SHA256 signatures are accepted'],
  MissingSignedHeader: ['IncompleteSignature', 'The signature must cover the host and x-amz-date headers'],
  MalformedDate: ['IncompleteSignature', 'The x-amz-date header is missing or malformed'],
  RequestExpired: ['InvalidSignatureException', 'Signature expired: the request time is more than the allowed skew away from the server clock'],
  ScopeMismatch: ['InvalidSignatureException', 'The credential scope does not match the request date or the kms service'],
  UnknownAccessKey: ['UnrecognizedClientException', 'The security token included in the request is invalid'],
  PayloadHashMismatch: ['InvalidSignatureException', 'The x-amz-content-sha256 header does not match the body'],
  SignatureMismatch: ['InvalidSignatureException', 'The request signature we calculated does not match the signature you provided'],
};

export interface KmsHandlerDeps {
  config(): RuntimeConfig;
  services: OperationServices;
  logger: Logger;
  metrics: XksMetrics;
  audit?: { record(fields: Record<string, unknown>): void };
  /** The process's in-flight count, shared with the XKS API (limits.maxInFlightRequests). */
  inFlight: InFlightRequests;
}

type Fields = Record<string, string | number | undefined>;

export function createKmsHandler(deps: KmsHandlerDeps) {
  const { inFlight } = deps;
  const quotas = new CredentialQuotas();
  // Per config generation: a new verifier (the clock skew may change on reload), and the quota
  // buckets of credentials the reload removed are dropped.
  let verifierFor: { config: RuntimeConfig; verifier: SigV4Verifier } | undefined;
  const verifier = (config: RuntimeConfig): SigV4Verifier => {
    if (verifierFor?.config !== config) {
      verifierFor = { config, verifier: new SigV4Verifier({ service: 'kms', maxClockSkewMs: config.limits.clockSkewSeconds * 1000 }) };
      if (config.kmsApi) quotas.retain(config.kmsApi.credentials);
    }
    return verifierFor.verifier;
  };

  /** Resolves false when the request is not for the KMS API (the caller goes on routing). */
  return async function handleKms(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const config = deps.config();
    const kms = config.kmsApi;
    const target = req.headers['x-amz-target'];
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0];
    if (!kms || path !== kms.path || typeof target !== 'string') return false;

    const started = process.hrtime.bigint();
    const deadline = Deadline.after(kms.requestDeadlineMs ?? config.limits.requestDeadlineMs);
    const operation = /^TrentService\.([A-Za-z]{1,64})$/.exec(target)?.[1];
    const fields: Fields = {
      api: 'kms',
      operation: operation !== undefined && KMS_OPERATIONS.has(operation) ? `TrentService.${operation}` : 'TrentService.Unknown',
      keyStore: kms.keyStore,
      remoteAddress: req.socket.remoteAddress,
    };
    let status = 200;
    let body: unknown;
    let errorType = '';
    // Shed before SigV4 and the HSM, as the XKS path does (see xks-handler).
    const admitted = inFlight.tryAdmit(config.limits.maxInFlightRequests);
    try {
      if (!admitted) {
        await readRawBody(req, MAX_BODY_BYTES); // read, so the connection stays usable
        throw new KmsError('ThrottlingException', overloadMessage(config.limits.maxInFlightRequests));
      }
      body = await run(config, req, operation, fields, deadline);
    } catch (err) {
      const error = err instanceof BodyTooLargeError ? new KmsError('ValidationException', `The request body exceeds ${err.limit} bytes`) : toKmsError(err);
      if (!(err instanceof KmsError) && error.type === 'KMSInternalException') fields.internalError = String((err as Error)?.message ?? '').slice(0, 200);
      status = error.status;
      errorType = error.type;
      fields.errorMessage = error.message;
      body = error.toBody();
      res.setHeader('x-amzn-ErrorType', error.type);
      if (err instanceof BodyTooLargeError) res.setHeader('Connection', 'close');
    } finally {
      if (admitted) inFlight.release();
    }
    writeJson(res, status, body, 'application/x-amz-json-1.1');

    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    fields.status = status;
    if (errorType) fields.errorName = errorType;
    fields.latencyMs = Math.round(seconds * 1e6) / 1e3;
    deps.metrics.request(fields.operation as string, kms.keyStore, status, errorType, seconds);
    if (typeof fields.hsmReturnCode === 'string') deps.metrics.hsmRequestError(fields.operation as string, fields.hsmReturnCode);
    deps.logger.log(status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info', 'kms api request', batched(fields));
    deps.audit?.record(fields);
    return true;
  };

  async function run(config: RuntimeConfig, req: IncomingMessage, operation: string | undefined, fields: Fields, deadline: Deadline): Promise<unknown> {
    const kms = config.kmsApi!;
    if (req.method !== 'POST') throw new KmsError('ValidationException', 'The KMS API accepts only POST');
    const body = await readRawBody(req, MAX_BODY_BYTES);
    const auth = verifier(config).verify(
      { method: req.method, url: req.url ?? '/', rawHeaders: req.rawHeaders, body },
      (accessKeyId) => kms.credentials.get(accessKeyId)?.secret,
    );
    if (auth.accessKeyId) fields.accessKeyId = auth.accessKeyId.slice(0, 128);
    if (!auth.ok) {
      fields.authFailure = auth.reason;
      fields.authDetail = auth.detail;
      deps.metrics.authFailures.inc({ key_store: kms.keyStore, reason: auth.reason });
      const [type, message] = AUTH_ERRORS[auth.reason];
      throw new KmsError(type, message);
    }
    fields.region = auth.region;
    if (auth.region !== kms.region) throw new KmsError('InvalidSignatureException', `Credential should be scoped to a valid region (${kms.region})`);
    const credential = kms.credentials.get(auth.accessKeyId)!;
    // After the signature, so nobody but the credential's holder can spend its quota.
    if (!quotas.tryTake(auth.accessKeyId, credential)) {
      fields.throttled = 'credential quota';
      deps.metrics.kmsApiThrottled.inc(accessKeyIdLabel(config.admin.accessKeyIdLabel, auth.accessKeyId));
      throw new KmsError('ThrottlingException', `The request rate of access key ${auth.accessKeyId} exceeds its quota of ${credential.throttle?.requestsPerSecond} requests/s; retry later`);
    }
    const handler = operation === undefined ? undefined : KMS_OPERATIONS.get(operation);
    if (!handler) throw new KmsError('UnknownOperationException', 'The X-Amz-Target operation is not supported by this endpoint');
    const type = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
    if (type !== 'application/x-amz-json-1.1' && type !== 'application/x-amz-json-1.0') {
      throw new KmsError('SerializationException', 'Content-Type must be application/x-amz-json-1.1');
    }
    const parsed = parseStrictJson(body.toString('utf8'));
    if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) {
      throw new KmsError('SerializationException', 'The request body is not a JSON object (or repeats a member name)');
    }
    const store = config.keyStores.find((s) => s.name === kms.keyStore);
    if (!store) throw new KmsError('KMSInternalException', 'The configured key store is missing');
    return handler({ services: deps.services, config: kms, store, credential, deadline, fields }, parsed.value as Body);
  }
}
