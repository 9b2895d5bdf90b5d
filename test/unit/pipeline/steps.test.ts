/**
 * The pipeline's steps, one at a time, over a RequestContext (src/pipeline). Requests are signed
 * by @smithy/signature-v4 (an independent signer) and verified by the real SigV4Verifier.
 */
import { expect } from 'chai';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { ProxyError, SignatureError } from '../../../src/core/errors';
import { Deadline } from '../../../src/hsm';
import { createLogger } from '../../../src/observability/logger';
import { XksMetrics } from '../../../src/observability/metrics';
import { admit, checkClientStayed, InFlightRequests, MAX_WAITING_PER_SLOT, release, shed } from '../../../src/pipeline/admission';
import { CLIENT_CLOSED_NAME, CLIENT_CLOSED_STATUS, ClientClosedError, collectRawBody, noteServerAnswer } from '../../../src/pipeline/body';
import { mediaType } from '../../../src/pipeline/content-type';
import { RequestContext } from '../../../src/pipeline/context';
import { parseBody } from '../../../src/pipeline/parse';
import { recordOutcome } from '../../../src/pipeline/record';
import { answerError, type WireFormat } from '../../../src/pipeline/respond';
import { authenticate, MAX_LOGGED_ACCESS_KEY_ID } from '../../../src/pipeline/signature';
import { AKID, BODY, lookup, NOW, REGION, signWithSmithy, verifier } from '../sigv4/helpers';

/** collectRawBody as a Promise. */
function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => collectRawBody(req, limit, (err, body) => (err ? reject(err) : resolve(body))));
}

type Ctx = RequestContext<unknown, unknown>;

function context(req: Partial<IncomingMessage> = {}): Ctx {
  return new RequestContext(req as IncomingMessage, {} as ServerResponse, {}, {}, 'Encrypt', 'ks-1', Deadline.after(1000), { operation: 'Encrypt' });
}

async function metricValue(metrics: XksMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const sample = (metric?.values ?? []).find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value));
  return sample?.value ?? 0;
}

describe('pipeline steps (unit)', () => {
  describe('admission', () => {
    it('counts a request in under the limit and releases it once', () => {
      const counts: number[] = [];
      const inFlight = new InFlightRequests((n) => counts.push(n));
      const ctx = context();
      expect(admit(ctx, inFlight, 1, 0)).to.equal(true);
      expect(ctx.admitted).to.equal(true);
      release(ctx, inFlight);
      expect(counts).to.deep.equal([1, 0]);
    });

    it('refuses at the limit, and a refused request is not released', () => {
      const counts: number[] = [];
      const inFlight = new InFlightRequests((n) => counts.push(n));
      const first = context();
      const second = context();
      expect(admit(first, inFlight, 1, 0)).to.equal(true);
      expect(admit(second, inFlight, 1, 0)).to.equal(false);
      expect(second.admitted).to.equal(false);
      release(second, inFlight);
      expect(counts).to.deep.equal([1]);
    });

    it('at the limit, waits for a slot: a release hands it to the oldest waiter, without freeing it', async () => {
      const counts: number[] = [];
      const inFlight = new InFlightRequests((n) => counts.push(n));
      const [first, second, third] = [context(), context(), context()];
      expect(admit(first, inFlight, 1, 1000)).to.equal(true);
      const secondAdmitted = admit(second, inFlight, 1, 1000);
      const thirdAdmitted = admit(third, inFlight, 1, 1000);
      expect(secondAdmitted).to.be.instanceOf(Promise);
      release(first, inFlight);
      expect(await secondAdmitted).to.equal(true);
      expect(second.admitted).to.equal(true);
      release(second, inFlight);
      expect(await thirdAdmitted).to.equal(true);
      release(third, inFlight);
      // One slot, handed on twice: the count went 1, then back to 0 only at the end.
      expect(counts).to.deep.equal([1, 0]);
    });

    it('refuses a waiter whose wait runs out, and the slot then frees normally', async () => {
      const counts: number[] = [];
      const inFlight = new InFlightRequests((n) => counts.push(n));
      const [first, second] = [context(), context()];
      expect(admit(first, inFlight, 1, 1000)).to.equal(true);
      const started = Date.now();
      expect(await admit(second, inFlight, 1, 30)).to.equal(false);
      expect(Date.now() - started).to.be.at.least(25);
      expect(second.admitted).to.equal(false);
      release(first, inFlight);
      release(second, inFlight);
      expect(counts).to.deep.equal([1, 0]);
    });

    it(`refuses at once beyond ${String(MAX_WAITING_PER_SLOT)} waiting per slot`, async () => {
      const inFlight = new InFlightRequests(() => undefined);
      const holder = context();
      expect(admit(holder, inFlight, 2, 50)).to.equal(true);
      expect(admit(context(), inFlight, 2, 50)).to.equal(true);
      const waiters = Array.from({ length: 2 * MAX_WAITING_PER_SLOT }, () => admit(context(), inFlight, 2, 50));
      expect(waiters.every((w) => w instanceof Promise)).to.equal(true);
      expect(admit(context(), inFlight, 2, 50)).to.equal(false);
      release(holder, inFlight);
      // The oldest waiter got the freed slot; the others ran out of time.
      expect(await Promise.all(waiters)).to.deep.equal([true, ...Array<boolean>(2 * MAX_WAITING_PER_SLOT - 1).fill(false)]);
    });

    it('after a reload lowered the limit, hands a slot on only once the count is under it', async () => {
      const counts: number[] = [];
      const inFlight = new InFlightRequests((n) => counts.push(n));
      const [a, b, c] = [context(), context(), context()];
      expect(admit(a, inFlight, 2, 1000)).to.equal(true);
      expect(admit(b, inFlight, 2, 1000)).to.equal(true);
      let cAdmitted: boolean | undefined;
      void (admit(c, inFlight, 1, 1000) as Promise<boolean>).then((x) => (cAdmitted = x));
      release(a, inFlight); // 2 in flight against the new limit of 1: freed, not handed on
      await Promise.resolve();
      expect(cAdmitted).to.equal(undefined);
      release(b, inFlight); // 1 in flight: handed on
      await new Promise((r) => setImmediate(r));
      expect(cAdmitted).to.equal(true);
      release(c, inFlight);
      expect(counts).to.deep.equal([1, 2, 1, 0]);
    });

    it('a request whose client left while it waited is refused as an abort, not left waiting for its body', async () => {
      const req = new PassThrough() as unknown as IncomingMessage;
      req.headers = { 'content-length': '10' };
      (req as unknown as PassThrough).write('{"x":');
      (req as unknown as PassThrough).destroy();
      await new Promise((r) => setImmediate(r)); // 'close' has been emitted before anyone listens
      const outcome = await Promise.race([readRawBody(req, 1024).catch((err: unknown) => err), new Promise((r) => setTimeout(() => r('still waiting'), 500))]);
      expect(outcome).to.be.instanceOf(ClientClosedError);
      expect((outcome as Error).message).to.equal('The connection closed before the request body was complete');
    });

    it('a request cut off mid-body by the server itself (its timeout) reads what the server answered, not that the client left', async () => {
      const socket = {};
      const req = new PassThrough() as unknown as IncomingMessage;
      req.headers = { 'content-length': '10' };
      Object.defineProperty(req, 'socket', { value: socket });
      const reading = readRawBody(req, 1024).catch((err: unknown) => err);
      (req as unknown as PassThrough).write('{"x":');
      noteServerAnswer(socket, new ProxyError('Validation', 'The request was not received in time'));
      (req as unknown as PassThrough).destroy();
      const outcome = await reading;
      expect(outcome).to.be.instanceOf(ProxyError).and.not.to.be.instanceOf(ClientClosedError);
      expect(outcome).to.include({ kind: 'Validation', message: 'The request was not received in time' });
    });

    it('neither counts nor sheds a request without a limit (a probe)', () => {
      const counts: number[] = [];
      const inFlight = new InFlightRequests((n) => counts.push(n));
      const ctx = context();
      expect(admit(ctx, inFlight, undefined, 50)).to.equal(true);
      expect(ctx.admitted).to.equal(false);
      release(ctx, inFlight);
      expect(counts).to.deep.equal([]);
    });

    it('sheds as Overloaded, naming the limit (the body is read before admission, so the connection stays usable)', () => {
      expect(() => shed(7)).to.throw(ProxyError, /maximum of 7 requests/).with.property('kind', 'Overloaded');
    });

    it('after a wait for a slot: refuses a request whose client left meanwhile, before any further work', () => {
      const stayed = context({ socket: { destroyed: false } } as unknown as Partial<IncomingMessage>);
      expect(() => checkClientStayed(stayed)).not.to.throw();
      const left = context({ socket: { destroyed: true } } as unknown as Partial<IncomingMessage>);
      expect(() => checkClientStayed(left)).to.throw(ClientClosedError, 'The connection closed while the request waited for a slot');
    });
  });

  describe('error answers', () => {
    const format: WireFormat = {
      contentType: 'application/json',
      headers: [],
      toWireError: () => {
        throw new Error('a closed connection is not mapped to a wire error');
      },
    };

    it('a client that closed the connection gets no answer written; the request is recorded as 499 ClientClosedRequest', () => {
      let destroyed = 0;
      const written: unknown[] = [];
      const res = { destroy: () => destroyed++, writeHead: (...a: unknown[]) => written.push(a), end: (...a: unknown[]) => written.push(a) };
      const ctx = new RequestContext({} as IncomingMessage, res as unknown as ServerResponse, {}, {}, 'Encrypt', 'ks-1', Deadline.after(1000), { operation: 'Encrypt' });
      answerError(ctx, format, new ClientClosedError('The connection closed while the request waited for a slot'));
      expect([ctx.status, ctx.errorName]).to.deep.equal([CLIENT_CLOSED_STATUS, CLIENT_CLOSED_NAME]);
      expect([CLIENT_CLOSED_STATUS, CLIENT_CLOSED_NAME]).to.deep.equal([499, 'ClientClosedRequest']);
      expect(ctx.fields.errorMessage).to.equal('The connection closed while the request waited for a slot');
      expect(written).to.deep.equal([]);
      expect(destroyed).to.equal(1);
    });
  });

  describe('SigV4', () => {
    async function signedContext(options: Parameters<typeof signWithSmithy>[0] = {}): Promise<Ctx> {
      const signed = await signWithSmithy(options);
      const ctx = context({ method: signed.method, url: signed.url, rawHeaders: signed.rawHeaders });
      ctx.body = signed.body;
      return ctx;
    }

    it('records the verified caller on the context, and in the log fields', async () => {
      const ctx = await signedContext();
      authenticate(ctx, verifier(NOW), lookup, new XksMetrics());
      expect(ctx.accessKeyId).to.equal(AKID);
      expect(ctx.region).to.equal(REGION);
      expect(ctx.fields).to.include({ accessKeyId: AKID, region: REGION });
    });

    it('throws SignatureError with the reason, logs it and counts it per key store', async () => {
      const ctx = await signedContext({ secretAccessKey: 'not-the-secret' });
      const metrics = new XksMetrics();
      const error = (() => {
        try {
          authenticate(ctx, verifier(NOW), lookup, metrics);
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(error).to.be.instanceOf(SignatureError).with.property('reason', 'SignatureMismatch');
      expect(ctx.accessKeyId).to.equal('');
      expect(ctx.fields).to.include({ authFailure: 'SignatureMismatch', accessKeyId: AKID });
      expect(await metricValue(metrics, 'xks_authentication_failures_total', { key_store: 'ks-1', reason: 'SignatureMismatch' })).to.equal(1);
    });

    it('logs a long access key ID whole, up to IAM\'s 128 characters, in both APIs (XKS used to cut at 64)', async () => {
      const long = `AKIA${'X'.repeat(96)}`;
      const ctx = await signedContext({ accessKeyId: long });
      expect(() => authenticate(ctx, verifier(NOW), lookup, new XksMetrics())).to.throw(SignatureError);
      expect(MAX_LOGGED_ACCESS_KEY_ID).to.equal(128);
      expect(ctx.fields.accessKeyId).to.equal(long);
    });
  });

  describe('Content-Type', () => {
    for (const [header, type] of [
      ['application/json', 'application/json'],
      ['Application/JSON; charset=utf-8', 'application/json'],
      ['  application/x-amz-json-1.1 ;x=y', 'application/x-amz-json-1.1'],
      ['', ''],
      [undefined, ''],
    ] as Array<[string | undefined, string]>) {
      it(`reads ${JSON.stringify(header)} as ${JSON.stringify(type)}`, () => expect(mediaType(header)).to.equal(type));
    }
  });

  describe('JSON', () => {
    it('parses the body onto the context', () => {
      const ctx = context();
      ctx.body = BODY;
      parseBody(ctx);
      expect(ctx.document).to.have.nested.property('requestMetadata.kmsOperation', 'Encrypt');
    });

    for (const body of ['{', '{"a":1,"a":2}', '']) {
      it(`leaves the document undefined for ${JSON.stringify(body)} (the protocol decides the error)`, () => {
        const ctx = context();
        ctx.body = Buffer.from(body);
        expect(() => parseBody(ctx)).not.to.throw();
        expect(ctx.document).to.equal(undefined);
      });
    }
  });

  describe('metrics, log line and audit entry', () => {
    it('counts, logs and audits each request once, with its status, errorName and latency', async () => {
      const stream = new PassThrough();
      let text = '';
      stream.on('data', (d: Buffer) => (text += d.toString()));
      const metrics = new XksMetrics();
      const audited: Array<Record<string, unknown>> = [];
      const ctx = context();
      ctx.status = 429;
      ctx.errorName = 'ThrottlingException';
      ctx.fields.hsmReturnCode = 'CKR_DEVICE_ERROR';
      recordOutcome(ctx, { metrics, logger: createLogger({ level: 'info', stream }), audit: { record: (f) => audited.push(f) } }, 'xks request');
      await new Promise((resolve) => setImmediate(resolve));
      const line = JSON.parse(text.trim()) as Record<string, unknown>;
      expect(line).to.include({ level: 'warn', message: 'xks request', operation: 'Encrypt', status: 429, errorName: 'ThrottlingException' });
      expect(line.latencyMs).to.be.a('number');
      expect(audited).to.have.length(1);
      expect(audited[0]).to.include({ status: 429, errorName: 'ThrottlingException' });
      expect(await metricValue(metrics, 'xks_requests_total', { operation: 'Encrypt', key_store: 'ks-1', status: '429', error_name: 'ThrottlingException' })).to.equal(1);
      expect(await metricValue(metrics, 'xks_hsm_request_errors_total', { operation: 'Encrypt', return_code: 'CKR_DEVICE_ERROR' })).to.equal(1);
    });

    it('logs a success at info and a 5xx at error', async () => {
      for (const [status, level] of [[200, 'info'], [503, 'error']] as const) {
        const stream = new PassThrough();
        let text = '';
        stream.on('data', (d: Buffer) => (text += d.toString()));
        const ctx = context();
        ctx.status = status;
        recordOutcome(ctx, { metrics: new XksMetrics(), logger: createLogger({ level: 'info', stream }) }, 'kms api request');
        await new Promise((resolve) => setImmediate(resolve));
        expect(JSON.parse(text.trim())).to.include({ level, status });
      }
    });
  });
});
