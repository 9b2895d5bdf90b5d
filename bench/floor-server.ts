/**
 * The floor: the least a Node XKS proxy must do per request on this machine, and nothing else, to
 * tell how much of the proxy's overhead any proxy pays. Per request: read the body; verify SigV4
 * (parse the Authorization header, SHA-256 of the body, the canonical request and its hash, one
 * HMAC, a constant-time compare; the signing key derived once per day); JSON.parse; decode the Base64
 * fields; hand the HSM work to one PKCS#11 thread (jobs of one event-loop turn in one message,
 * encoded by the proxy's own codec into one transferred ArrayBuffer, as the proxy does) and answer
 * with the result as JSON. Encrypt does the proxy's HSM work: RNG for the IV,
 * encrypt, verify-decrypt, under the spec's length-prefixed AAD. GetKeyMetadata and GetHealthStatus
 * answer fixed JSON once the request verified.
 * Not done, and so in the proxy's overhead above this floor: validation, the duplicate-name scan,
 * the log line, metrics, admission, deadlines, key lookup and versions, timestamps' and headers'
 * checks beyond the signature, security headers, errors in the spec's shape.
 * FLOOR_PARTS (comma-separated) adds the proxy's own code for some of those, to tell what they cost on
 * top of the floor (`npm run bench -- --floor-parts=...`): validate (the compiled Ajv validators,
 * Base64 decodes included), log (the request log line through the proxy's logger), metrics (the
 * request counter and histogram and an HSM call's histogram; GET /metrics shows them), headers (the
 * captured helmet headers on every answer), sigv4 (the proxy's SigV4Verifier in place of the floor's
 * own: clock skew, scope, required signed headers, one Authorization header, the access key's
 * secret looked up), strict-json (the proxy's JSON parse that refuses a repeated member name).
 * Args: certFile keyFile modulePath tokenLabel keyLabel; the PIN in XKS_HSM_PIN, the SigV4 secret
 * in FLOOR_SECRET (never argv), its access key ID in FLOOR_ACCESS_KEY_ID. Prints its port on stdout.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type ServerOptions } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as pkcs11js from 'pkcs11js';
import { buildHsmAad } from '../src/api/hsm-aad';
import { decodedField } from '../src/api/base64';
import { compileRequestValidators } from '../src/api/schemas';
import { SigV4Verifier } from '../src/auth/sigv4';
import { parseStrictJson } from '../src/pipeline/strict-json';
import { createLogger, logRequestLine } from '../src/observability/logger';
import { XksMetrics } from '../src/observability/metrics';
import { captureApiHeaders } from '../src/server/security-headers';
import { metadataForNewCiphertext } from '../src/keys/ciphertext-metadata';
import { serverTlsOptions } from '../src/server/tls';
import { type DecryptJob, type EncryptJob, type EncryptOutcome, type GcmJob, type JobResult, type Pkcs11Job, VerifyScratch } from '../src/hsm/gcm-jobs';
import { decodeJobs, decodeReplies, encodeJobs, encodeReplies } from '../src/hsm/pkcs11-worker-codec';
import { findToken } from '../src/hsm/pkcs11/token';
import type { JobReply } from '../src/hsm/pkcs11-worker-protocol';

/** The jobs one event-loop turn sent, with what to call for each reply, in the order the thread answers. */
interface Batch { ops: Array<GcmJob['op']>; done: Array<(reply: JobReply) => void> }

/** ciphertextMetadata for key version 1, as the proxy writes it. */
const VERSION_1 = metadataForNewCiphertext(1).metadata;
const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

if (isMainThread) main();
else hsmThread();

/** The proxy's parts FLOOR_PARTS asks for, each built once as the proxy builds it per config generation. */
function proxyParts() {
  const parts = new Set((process.env.FLOOR_PARTS ?? '').split(',').filter((part) => part !== ''));
  const unknown = [...parts].filter((part) => !['validate', 'log', 'metrics', 'headers', 'sigv4', 'strict-json'].includes(part));
  if (unknown.length > 0) throw new Error(`FLOOR_PARTS: unknown part(s) ${unknown.join(', ')}`);
  return {
    validators: parts.has('validate') ? compileRequestValidators({ maxPlaintextBytes: 8192, maxAadBytes: 8192 }) : undefined,
    logger: parts.has('log') ? createLogger({ level: 'info' }) : undefined,
    metrics: parts.has('metrics') ? new XksMetrics() : undefined,
    headers: parts.has('headers') ? captureApiHeaders().flat() : [],
    // As the proxy builds it per config generation (src/server/pipeline-state.ts), default clock skew.
    verifier: parts.has('sigv4') ? new SigV4Verifier({ service: 'kms-xks-proxy' }) : undefined,
    strictJson: parts.has('strict-json'),
  };
}

function main(): void {
  const [certFile, keyFile, modulePath, tokenLabel, keyLabel] = process.argv.slice(2) as string[];
  const secret = process.env.FLOOR_SECRET as string;
  const { validators, logger, metrics, headers, verifier, strictJson } = proxyParts();
  // The proxy's per-key-store lookup (src/server/routes.ts): a Map from access key ID to secret.
  const credentials = new Map([[process.env.FLOOR_ACCESS_KEY_ID ?? '', secret]]);
  const lookupSecret = (accessKeyId: string): string | undefined => credentials.get(accessKeyId);
  const worker = new Worker(__filename, { workerData: { modulePath, tokenLabel, keyLabel, pin: process.env.XKS_HSM_PIN } });
  // The proxy's hand-off (src/hsm/pkcs11-executor.ts): a batch encoded into one transferred
  // ArrayBuffer each way (src/hsm/pkcs11-worker-codec.ts). A structured clone of the same jobs cost
  // the floor's threads ~20-25 µs more per Encrypt than the proxy's, so the floor was no floor there.
  const sent: Batch[] = [];
  let queued: GcmJob[] = [];
  let callbacks: Array<(reply: JobReply) => void> = [];
  worker.on('message', (data: ArrayBuffer) => {
    const batch = sent.shift();
    if (batch === undefined) return; // the thread's ready message
    decodeReplies(batch.ops, data).forEach((reply, i) => batch.done[i]?.(reply));
  });
  const hsm = (job: GcmJob, done: (reply: JobReply) => void): void => {
    if (queued.length === 0) setImmediate(() => {
      const data = encodeJobs(queued);
      sent.push({ ops: queued.map((j) => j.op), done: callbacks });
      worker.postMessage(data, [data]);
      queued = [];
      callbacks = [];
    });
    queued.push(job);
    callbacks.push(done);
  };
  // The thread uses its own session and key handle: these only fill the jobs' fields.
  const session = Buffer.alloc(8);
  const key = { label: 'floor', recheck: false };

  let signingDate = '';
  let signingKey: Buffer = Buffer.alloc(0);
  const keyFor = (date: string, region: string, service: string): Buffer => {
    if (date !== signingDate) {
      const h = (k: string | Buffer, d: string): Buffer => createHmac('sha256', k).update(d).digest();
      signingKey = h(h(h(h(`AWS4${secret}`, date), region), service), 'aws4_request');
      signingDate = date;
    }
    return signingKey;
  };
  interface Caller { accessKeyId: string; region: string }
  /** The caller when the signature verifies, else undefined: the proxy's verifier with the sigv4 part. */
  const verified = (req: IncomingMessage, body: Buffer): Caller | undefined => {
    if (verifier) {
      const result = verifier.verify({ method: req.method ?? 'GET', url: req.url ?? '/', rawHeaders: req.rawHeaders, body }, lookupSecret);
      return result.ok ? { accessKeyId: result.accessKeyId, region: result.region } : undefined;
    }
    const m = AUTH.exec(req.headers.authorization ?? '');
    if (!m) return undefined;
    const [, accessKeyId, date, region, service, signedHeaders, signature] = m as unknown as string[];
    const amzDate = req.headers['x-amz-date'];
    if (typeof amzDate !== 'string' || !amzDate.startsWith(date as string)) return undefined;
    let canonical = `${req.method as string}\n${(req.url as string).split('?')[0] as string}\n\n`;
    for (const name of (signedHeaders as string).split(';')) canonical += `${name}:${String(req.headers[name] ?? '').trim()}\n`;
    canonical += `\n${signedHeaders as string}\n${createHash('sha256').update(body).digest('hex')}`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${date as string}/${region as string}/${service as string}/aws4_request\n${createHash('sha256').update(canonical).digest('hex')}`;
    const expected = createHmac('sha256', keyFor(date as string, region as string, service as string)).update(toSign).digest();
    return timingSafeEqual(expected, Buffer.from(signature as string, 'hex')) ? { accessKeyId: accessKeyId as string, region: region as string } : undefined;
  };

  /** A request's own state for the optional parts: its start, the operation and the log line's fields. */
  interface Outcome { started: bigint; operation: string; fields: Record<string, string | number | undefined> }
  const record = (outcome: Outcome | undefined, status: number): void => {
    if (outcome === undefined) return;
    const seconds = Number(process.hrtime.bigint() - outcome.started) / 1e9;
    const { fields } = outcome;
    fields.status = status;
    fields.latencyMs = Math.round(seconds * 1e6) / 1e3;
    metrics?.request(outcome.operation, 'bench', status, '', seconds);
    if (logger) logRequestLine(logger, status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info', 'xks request', fields);
  };
  const answer = (res: ServerResponse, status: number, json: string, outcome?: Outcome): void => {
    res.writeHead(status, [...headers, 'content-type', 'application/json', 'content-length', String(json.length)]);
    res.end(json, 'latin1');
    record(outcome, status);
  };
  const operationOf = (url: string): 'GetHealthStatus' | 'GetKeyMetadata' | 'Encrypt' | 'Decrypt' =>
    url.endsWith('/health') ? 'GetHealthStatus' : url.endsWith('/metadata') ? 'GetKeyMetadata' : url.endsWith('/encrypt') ? 'Encrypt' : 'Decrypt';
  /** A Base64 field's bytes: the ones the validator decoded when it ran (as the proxy takes them), else decoded here. */
  const bytesOf = (doc: Record<string, string>, field: string): Buffer => (doc[field] === undefined ? Buffer.alloc(0) : decodedField(doc, field));
  const hsmMetrics = (operation: 'encrypt' | 'decrypt', started: bigint): void => metrics?.hsmCall('hsm-1', operation, Number(process.hrtime.bigint() - started) / 1e9, 'ok');
  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const url = req.url as string;
    const operation = operationOf(url);
    const outcome: Outcome | undefined = logger || metrics ? { started: process.hrtime.bigint(), operation, fields: { operation, keyStore: 'bench', remoteAddress: req.socket.remoteAddress } } : undefined;
    const auth = verified(req, body);
    if (!auth) return answer(res, 403, '{"errorName":"AuthenticationFailedException"}', outcome);
    if (outcome) {
      const { fields } = outcome;
      if (operation !== 'GetHealthStatus') fields.externalKeyId = url.split('/')[5];
      fields.accessKeyId = auth.accessKeyId;
      fields.region = auth.region;
    }
    let doc: Record<string, string>;
    try {
      const text = body.toString('utf8');
      if (strictJson) {
        const parsed = parseStrictJson(text);
        if (!parsed.ok) throw new Error(parsed.reason);
        doc = parsed.value as Record<string, string>;
      } else doc = JSON.parse(text) as Record<string, string>;
      validators?.[operation](doc);
    } catch {
      return answer(res, 400, '{"errorName":"ValidationException"}', outcome);
    }
    if (outcome) {
      const metadata = doc.requestMetadata as unknown as Record<string, string>;
      for (const name of ['kmsRequestId', 'kmsOperation', 'awsPrincipalArn', 'kmsKeyArn']) if (typeof metadata[name] === 'string') outcome.fields[name] = metadata[name];
    }
    if (operation === 'GetHealthStatus') return answer(res, 200, '{"xksProxyFleetSize":1,"xksProxyVendor":"floor","xksProxyModel":"floor","ekmVendor":"floor","ekmFleetDetails":[{"id":"hsm-1","model":"SoftHSM","healthStatus":"ACTIVE"}]}', outcome);
    if (operation === 'GetKeyMetadata') return answer(res, 200, '{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"}', outcome);
    const aad = doc.additionalAuthenticatedData === undefined ? Buffer.alloc(0) : bytesOf(doc, 'additionalAuthenticatedData');
    const hsmStarted = process.hrtime.bigint();
    if (operation === 'Encrypt') {
      const job: EncryptJob = { op: 'encrypt', session, key, ivMode: 'caller', profileName: 'floor', plaintext: bytesOf(doc, 'plaintext'), aad: buildHsmAad(aad, VERSION_1), verify: true, digestPrefix: undefined };
      return hsm(job, (r) => {
        hsmMetrics('encrypt', hsmStarted);
        const sealed = (r.result as JobResult<EncryptOutcome> | undefined)?.value;
        if (sealed?.verification !== 'decrypted-back') return answer(res, 500, '{"errorName":"InternalException"}', outcome);
        answer(res, 200, `{"ciphertext":"${sealed.ciphertext.toString('base64')}","ciphertextMetadata":"${VERSION_1.toString('base64')}","initializationVector":"${sealed.iv.toString('base64')}","authenticationTag":"${sealed.tag.toString('base64')}"}`, outcome);
      });
    }
    const metadata = bytesOf(doc, 'ciphertextMetadata');
    const job: DecryptJob = { op: 'decrypt', session, key, ciphertext: bytesOf(doc, 'ciphertext'), tag: bytesOf(doc, 'authenticationTag'), iv: bytesOf(doc, 'initializationVector'), aad: buildHsmAad(aad, metadata) };
    return hsm(job, (r) => {
      hsmMetrics('decrypt', hsmStarted);
      const plaintext = (r.result as JobResult<Buffer> | undefined)?.value;
      if (plaintext === undefined) return answer(res, 400, '{"errorName":"InvalidCiphertextException"}', outcome);
      answer(res, 200, `{"plaintext":"${plaintext.toString('base64')}"}`, outcome);
    });
  };

  const server = createServer({ ...serverTlsOptions(certFile as string, keyFile as string), keepAliveTimeout: 65000 } as ServerOptions, (req, res) => {
    // With the metrics part, GET /metrics shows what the requests recorded (the floor's tests read it).
    if (metrics && req.method === 'GET' && req.url === '/metrics') {
      void metrics.registry.metrics().then((text) => res.end(text));
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
    });
    req.on('end', () => handle(req, res, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length)));
  });
  worker.once('message', () => server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`)));
  process.on('SIGTERM', () => process.exit(0));
}

/** One session, sync calls: the raw work of bench/raw-hsm-work.ts, a batch per message. */
function hsmThread(): void {
  const { modulePath, tokenLabel, keyLabel, pin } = workerData as { modulePath: string; tokenLabel: string; keyLabel: string; pin: string };
  const p11 = new pkcs11js.PKCS11();
  p11.load(modulePath);
  p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  // The proxy's lookup: it skips a slot whose token cannot be read (a token deleted since C_Initialize).
  const { slot } = findToken(p11, modulePath, { label: tokenLabel });
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  p11.C_Login(session, pkcs11js.CKU_USER, pin);
  p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: keyLabel }]);
  const key = p11.C_FindObjects(session);
  p11.C_FindObjectsFinal(session);
  if (!key) throw new Error(`key ${keyLabel} not found`);
  const resolved = { handle: key, checked: false };
  const gcm = (iv: Buffer, aad: Buffer): pkcs11js.Mechanism => ({ mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: 96, aad, tagBits: 128 } as pkcs11js.GcmParams });
  // As the proxy's thread does (src/hsm/gcm-jobs.ts): the verify-decrypt reuses one buffer, wiped after.
  const scratch = new VerifyScratch();
  const encrypt = (job: EncryptJob): JobReply => {
    const { plaintext, aad } = job;
    const iv = p11.C_GenerateRandom(session, Buffer.allocUnsafe(12));
    p11.C_EncryptInit(session, gcm(iv, aad), key);
    const out = p11.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + 16));
    p11.C_DecryptInit(session, gcm(iv, aad), key);
    const into = scratch.take(out.length);
    const back = p11.C_Decrypt(session, out, into);
    const verification = back.equals(plaintext) ? 'decrypted-back' : 'did-not-decrypt';
    into.fill(0);
    const value: EncryptOutcome = { iv, ciphertext: out.subarray(0, plaintext.length), tag: out.subarray(plaintext.length), verification };
    return { result: { value, key: resolved } };
  };
  const decrypt = (job: DecryptJob): JobReply => {
    const { ciphertext, tag } = job;
    // The codec puts the tag right after the ciphertext: C_Decrypt's input is one view, no copy.
    const sealed = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.length + tag.length);
    p11.C_DecryptInit(session, gcm(job.iv, job.aad), key);
    return { result: { value: p11.C_Decrypt(session, sealed, Buffer.alloc(sealed.length)), key: resolved } };
  };
  const run = (job: Pkcs11Job): JobReply => {
    try {
      if (job.op === 'encrypt') return encrypt(job);
      if (job.op === 'decrypt') return decrypt(job);
      return { error: { kind: 'Internal', message: `the floor runs no ${job.op} job` } };
    } catch (error) {
      return { error: { kind: 'Internal', message: (error as Error).message } };
    }
  };
  const port = parentPort as NonNullable<typeof parentPort>;
  port.on('message', (data: ArrayBuffer) => {
    const jobs = decodeJobs(data);
    const replies = encodeReplies(jobs.map((job) => job.op), jobs.map(run));
    port.postMessage(replies, [replies]);
  });
  port.postMessage(new ArrayBuffer(0));
}
