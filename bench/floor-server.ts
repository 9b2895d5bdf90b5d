/**
 * The floor: the least a Node XKS proxy must do per request on this machine, and nothing else, to
 * tell how much of the proxy's overhead any proxy pays. Per request: read the body; verify SigV4
 * (parse the Authorization header, SHA-256 of the body, the canonical request and its hash, one
 * HMAC, a constant-time compare; the signing key derived once per day); JSON.parse; decode the Base64
 * fields; hand the HSM work to one PKCS#11 thread (jobs of one event-loop turn in one message, as the
 * proxy does) and answer with the result as JSON. Encrypt does the proxy's HSM work: RNG for the IV,
 * encrypt, verify-decrypt, under the spec's length-prefixed AAD. GetKeyMetadata and GetHealthStatus
 * answer fixed JSON once the request verified.
 * Not done, and so in the proxy's overhead above this floor: validation, the duplicate-name scan,
 * the log line, metrics, admission, deadlines, key lookup and versions, timestamps' and headers'
 * checks beyond the signature, security headers, errors in the spec's shape.
 * Args: certFile keyFile modulePath tokenLabel keyLabel; the PIN in XKS_HSM_PIN, the SigV4 secret
 * in FLOOR_SECRET (never argv). Prints its port on stdout.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type ServerOptions } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as pkcs11js from 'pkcs11js';
import { buildHsmAad } from '../src/api/hsm-aad';
import { metadataForNewCiphertext } from '../src/keys/ciphertext-metadata';
import { serverTlsOptions } from '../src/server/tls';

interface Job { id: number; op: 'encrypt' | 'decrypt'; data: Uint8Array; aad: Uint8Array; iv?: Uint8Array }
interface Reply { id: number; ok: boolean; out?: Uint8Array; iv?: Uint8Array }

/** ciphertextMetadata for key version 1, as the proxy writes it. */
const VERSION_1 = metadataForNewCiphertext(1).metadata;
const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

if (isMainThread) main();
else hsmThread();

function main(): void {
  const [certFile, keyFile, modulePath, tokenLabel, keyLabel] = process.argv.slice(2) as string[];
  const secret = process.env.FLOOR_SECRET as string;
  const worker = new Worker(__filename, { workerData: { modulePath, tokenLabel, keyLabel, pin: process.env.XKS_HSM_PIN } });
  const waiting = new Map<number, (reply: Reply) => void>();
  let queued: Job[] = [];
  let nextId = 0;
  worker.on('message', (replies: Reply[]) => {
    for (const reply of replies) {
      waiting.get(reply.id)?.(reply);
      waiting.delete(reply.id);
    }
  });
  const hsm = (job: Omit<Job, 'id'>, done: (reply: Reply) => void): void => {
    const id = nextId++;
    waiting.set(id, done);
    if (queued.length === 0) setImmediate(() => {
      worker.postMessage(queued);
      queued = [];
    });
    queued.push({ id, ...job });
  };

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
  const verified = (req: IncomingMessage, body: Buffer): boolean => {
    const m = AUTH.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const [, , date, region, service, signedHeaders, signature] = m as unknown as string[];
    const amzDate = req.headers['x-amz-date'];
    if (typeof amzDate !== 'string' || !amzDate.startsWith(date as string)) return false;
    let canonical = `${req.method as string}\n${(req.url as string).split('?')[0] as string}\n\n`;
    for (const name of (signedHeaders as string).split(';')) canonical += `${name}:${String(req.headers[name] ?? '').trim()}\n`;
    canonical += `\n${signedHeaders as string}\n${createHash('sha256').update(body).digest('hex')}`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${date as string}/${region as string}/${service as string}/aws4_request\n${createHash('sha256').update(canonical).digest('hex')}`;
    const expected = createHmac('sha256', keyFor(date as string, region as string, service as string)).update(toSign).digest();
    return timingSafeEqual(expected, Buffer.from(signature as string, 'hex'));
  };

  const answer = (res: ServerResponse, status: number, json: string): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': json.length });
    res.end(json, 'latin1');
  };
  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    if (!verified(req, body)) return answer(res, 403, '{"errorName":"AuthenticationFailedException"}');
    let doc: Record<string, string>;
    try {
      doc = JSON.parse(body.toString('utf8')) as Record<string, string>;
    } catch {
      return answer(res, 400, '{"errorName":"ValidationException"}');
    }
    const url = req.url as string;
    if (url.endsWith('/health')) return answer(res, 200, '{"xksProxyFleetSize":1,"xksProxyVendor":"floor","xksProxyModel":"floor","ekmVendor":"floor","ekmFleetDetails":[{"id":"hsm-1","model":"SoftHSM","healthStatus":"ACTIVE"}]}');
    if (url.endsWith('/metadata')) return answer(res, 200, '{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"}');
    const aad = Buffer.from(doc.additionalAuthenticatedData ?? '', 'base64');
    if (url.endsWith('/encrypt')) {
      return hsm({ op: 'encrypt', data: Buffer.from(doc.plaintext ?? '', 'base64'), aad: buildHsmAad(aad, VERSION_1) }, (r) => {
        if (!r.ok) return answer(res, 500, '{"errorName":"InternalException"}');
        const out = Buffer.from(r.out as Uint8Array);
        answer(res, 200, `{"ciphertext":"${out.subarray(0, out.length - 16).toString('base64')}","ciphertextMetadata":"${VERSION_1.toString('base64')}","initializationVector":"${Buffer.from(r.iv as Uint8Array).toString('base64')}","authenticationTag":"${out.subarray(out.length - 16).toString('base64')}"}`);
      });
    }
    const sealed = Buffer.concat([Buffer.from(doc.ciphertext ?? '', 'base64'), Buffer.from(doc.authenticationTag ?? '', 'base64')]);
    const metadata = Buffer.from(doc.ciphertextMetadata ?? '', 'base64');
    return hsm({ op: 'decrypt', data: sealed, aad: buildHsmAad(aad, metadata), iv: Buffer.from(doc.initializationVector ?? '', 'base64') }, (r) => {
      if (!r.ok) return answer(res, 400, '{"errorName":"InvalidCiphertextException"}');
      answer(res, 200, `{"plaintext":"${Buffer.from(r.out as Uint8Array).toString('base64')}"}`);
    });
  };

  const server = createServer({ ...serverTlsOptions(certFile as string, keyFile as string), keepAliveTimeout: 65000 } as ServerOptions, (req, res) => {
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
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === tokenLabel);
  if (!slot) throw new Error(`token ${tokenLabel} not found`);
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  p11.C_Login(session, pkcs11js.CKU_USER, pin);
  p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: keyLabel }]);
  const key = p11.C_FindObjects(session);
  p11.C_FindObjectsFinal(session);
  if (!key) throw new Error(`key ${keyLabel} not found`);
  const gcm = (iv: Buffer, aad: Buffer): pkcs11js.Mechanism => ({ mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: 96, aad, tagBits: 128 } as pkcs11js.GcmParams });
  const run = (job: Job): Reply => {
    const aad = Buffer.from(job.aad.buffer, job.aad.byteOffset, job.aad.byteLength);
    const data = Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength);
    try {
      if (job.op === 'encrypt') {
        const iv = p11.C_GenerateRandom(session, Buffer.alloc(12));
        p11.C_EncryptInit(session, gcm(iv, aad), key);
        const out = p11.C_Encrypt(session, data, Buffer.alloc(data.length + 16));
        p11.C_DecryptInit(session, gcm(iv, aad), key);
        const back = p11.C_Decrypt(session, out, Buffer.alloc(out.length));
        return { id: job.id, ok: back.equals(data), out, iv };
      }
      p11.C_DecryptInit(session, gcm(Buffer.from(job.iv as Uint8Array), aad), key);
      return { id: job.id, ok: true, out: p11.C_Decrypt(session, data, Buffer.alloc(data.length)) };
    } catch {
      return { id: job.id, ok: false };
    }
  };
  const port = parentPort as NonNullable<typeof parentPort>;
  port.on('message', (jobs: Job[]) => port.postMessage(jobs.map(run)));
  port.postMessage([]);
}
