import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import winston from 'winston';
import { batched, createLogger, logRequestLine } from '../../../src/observability/logger';

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>>; raw: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return {
    logger: createLogger({ level: 'info', stream }),
    lines: () => text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>),
    raw: () => text,
  };
}

describe('logger', () => {
  it('writes one JSON object per line: timestamp, level, message, then the fields in call order', async () => {
    const { logger, raw } = capture();
    logger.info('xks request', { operation: 'Encrypt', status: 200, latencyMs: 1.5 });
    await new Promise((resolve) => setImmediate(resolve));
    const line = raw().trim();
    expect(line).to.match(/^\{"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"info","message":"xks request","operation":"Encrypt","status":200,"latencyMs":1.5\}$/);
  });

  it('drops fields that could carry secrets, whatever their case', async () => {
    const { logger, lines, raw } = capture();
    logger.warn('oops', { plaintext: 'CANARY-1', Authorization: 'CANARY-2', secretAccessKey: 'CANARY-3', PIN: 'CANARY-4', body: 'CANARY-5', additionalAuthenticatedData: 'CANARY-6', keep: 'yes' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(raw()).not.to.include('CANARY');
    expect(lines()[0]).to.include({ level: 'warn', message: 'oops', keep: 'yes' });
  });

  it('never throws on values JSON.stringify cannot write (BigInt, cycles)', async () => {
    const { logger, lines } = capture();
    const cycle: Record<string, unknown> = { name: 'c' };
    cycle.self = cycle;
    logger.error('odd values', { big: 10n, cycle });
    await new Promise((resolve) => setImmediate(resolve));
    const [line] = lines();
    expect(line).to.include({ level: 'error', message: 'odd values', big: 10 });
    expect(line?.cycle).to.deep.equal({ name: 'c', self: '[Circular]' });
    expect(line?.timestamp).to.be.a('string');
  });
});

describe('logger: batched request lines', () => {
  function batchedCapture() {
    const stream = new PassThrough();
    const writes: string[] = [];
    stream.on('data', (d: Buffer) => writes.push(d.toString()));
    return { logger: createLogger({ level: 'info', stream, batch: true }), writes };
  }
  const turnEnds = () => new Promise((done) => setImmediate(done));

  it('writes the request lines of one turn in one write at the end of the turn, never the symbol mark', async () => {
    const { logger, writes } = batchedCapture();
    logger.info('xks request', batched({ n: 1 }));
    logger.info('xks request', batched({ n: 2 }));
    await Promise.resolve();
    expect(writes).to.deep.equal([]);
    await turnEnds();
    await turnEnds();
    expect(writes).to.have.length(1);
    expect(writes[0]!.trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n)).to.deep.equal([1, 2]);
  });

  it('writes any other line at once, after the pending request lines, keeping the order', async () => {
    const { logger, writes } = batchedCapture();
    logger.info('xks request', batched({ n: 1 }));
    logger.warn('config reload rejected');
    await Promise.resolve();
    const text = writes.join('');
    expect(text.trim().split('\n').map((l) => (JSON.parse(l) as { message: string }).message)).to.deep.equal(['xks request', 'config reload rejected']);
  });
});

describe('logger: the request line written straight to the transport', () => {
  const turnEnds = () => new Promise((done) => setImmediate(done));
  const withoutTimestamp = (line: string) => {
    const { timestamp, ...rest } = JSON.parse(line) as Record<string, unknown>;
    expect(timestamp).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    return rest;
  };

  it('writes timestamp, level, message, then the fields in call order; with no fields, or a BigInt among them, still one JSON object', async () => {
    const { logger, raw } = capture();
    logRequestLine(logger, 'info', 'xks request', { operation: 'Encrypt', status: 200, skipped: undefined, latencyMs: 1.5 });
    logRequestLine(logger, 'warn', 'xks request', {});
    logRequestLine(logger, 'error', 'xks request', { big: 10n, status: 500 });
    await turnEnds();
    const [first, second, third] = raw().trim().split('\n');
    const head = (level: string) => `\\{"timestamp":"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z","level":"${level}","message":"xks request"`;
    expect(first).to.match(new RegExp(`^${head('info')},"operation":"Encrypt","status":200,"latencyMs":1.5\\}$`));
    expect(second).to.match(new RegExp(`^${head('warn')}\\}$`));
    // The fallback serialiser (safe-stable-stringify) sorts the keys.
    expect(JSON.parse(third as string)).to.include({ level: 'error', message: 'xks request', big: 10, status: 500 });
  });

  it('writes the same line as logger.log with batched fields, in the same order, and leaves the fields as they were', async () => {
    const fields = () => ({ operation: 'Encrypt', status: 200, plaintext: 'CANARY-1', Authorization: 'CANARY-2', latencyMs: 1.5 });
    const viaLog = capture();
    viaLog.logger.log('info', 'xks request', batched(fields()));
    const direct = capture();
    const mine = fields();
    logRequestLine(direct.logger, 'info', 'xks request', mine);
    await turnEnds();
    expect(direct.raw()).not.to.include('CANARY');
    expect(direct.raw().trim().split('\n').map(withoutTimestamp)).to.deep.equal(viaLog.raw().trim().split('\n').map(withoutTimestamp));
    expect(Object.getOwnPropertySymbols(mine)).to.deep.equal([]);
    expect(Object.keys(mine)).to.deep.equal(Object.keys(fields()));
  });

  it("keeps the logger's level and silence", async () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d: Buffer) => (text += d.toString()));
    const logger = createLogger({ level: 'warn', stream });
    logRequestLine(logger, 'info', 'xks request', { status: 200 });
    logRequestLine(logger, 'warn', 'xks request', { status: 400 });
    logger.silent = true;
    logRequestLine(logger, 'error', 'xks request', { status: 500 });
    await turnEnds();
    expect(text.trim().split('\n').map((l) => (JSON.parse(l) as { status: number }).status)).to.deep.equal([400]);
  });

  it('follows a level changed after creation, and a level set on its transport, as logger.isLevelEnabled does', async () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d: Buffer) => (text += d.toString()));
    const logger = createLogger({ level: 'info', stream });
    const [transport] = logger.transports;
    const winstonSays: number[] = [];
    const write = (n: number, level: string): void => {
      if (logger.isLevelEnabled(level)) winstonSays.push(n);
      logRequestLine(logger, level, 'xks request', { n });
    };
    logger.level = 'error';
    write(1, 'warn');
    write(2, 'error');
    logger.level = 'info';
    transport!.level = 'warn';
    write(3, 'info');
    write(4, 'warn');
    write(5, 'no-such-level');
    transport!.level = 'no-such-level';
    write(6, 'info');
    write(7, 'debug');
    await turnEnds();
    const written = text.trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n);
    expect(written).to.deep.equal([2, 4, 6]);
    expect(written).to.deep.equal(winstonSays);
  });

  it('waits for the end of the turn with the other request lines when batching', async () => {
    const stream = new PassThrough();
    const writes: string[] = [];
    stream.on('data', (d: Buffer) => writes.push(d.toString()));
    const logger = createLogger({ level: 'info', stream, batch: true });
    logRequestLine(logger, 'info', 'xks request', { n: 1 });
    logger.info('xks request', batched({ n: 2 }));
    await Promise.resolve();
    expect(writes).to.deep.equal([]);
    await turnEnds();
    expect(writes).to.have.length(1);
    expect(writes[0]!.trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n)).to.deep.equal([1, 2]);
  });

  it('goes through logger.log for a logger createLogger did not make', async () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d: Buffer) => (text += d.toString()));
    const other = winston.createLogger({ level: 'info', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
    logRequestLine(other, 'info', 'xks request', { status: 200 });
    await turnEnds();
    expect(JSON.parse(text.trim())).to.include({ level: 'info', message: 'xks request', status: 200 });
  });
});

describe('logger: the stderr guard beside worker threads', () => {
  const LOGGER_JS = join(__dirname, '../../../src/observability/logger.js');
  const THREADS = 12;

  /**
   * A fresh process (the guard is added once per process) with stderr on a pipe, as in mocha's
   * parallel workers and under a container runtime: THREADS worker threads, as the PKCS#11 executors
   * start them, then the first createLogger, then some other 'error' listener on stderr.
   */
  function run(): Promise<{ out: string; err: string }> {
    const script = `
      const { Worker } = require('node:worker_threads');
      const { PassThrough } = require('node:stream');
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.name + ': ' + w.message));
      const turn = () => new Promise((done) => setImmediate(done));
      (async () => {
        const threads = Array.from({ length: ${THREADS} }, () =>
          new Worker("require('node:worker_threads').parentPort.once('message', () => undefined)", { eval: true }));
        const withThreads = process.stderr.listenerCount('error');
        require(${JSON.stringify(LOGGER_JS)}).createLogger({ level: 'info', stream: new PassThrough() });
        const withGuard = process.stderr.listenerCount('error');
        await turn();
        const afterLogger = [...warnings];
        process.stderr.on('error', () => undefined);
        await turn();
        const afterOther = warnings.slice(afterLogger.length);
        await Promise.all(threads.map((thread) => thread.terminate()));
        await turn();
        const afterExit = process.stderr.listenerCount('error');
        process.stdout.write(JSON.stringify({ withThreads, withGuard, afterExit, afterLogger, afterOther }));
      })();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise((resolve) => child.on('close', () => resolve({ out, err })));
  }

  it("is not taken for a listener leak when the threads' stderr pipes came first; a later listener still is", async function () {
    this.timeout(20_000);
    const { out, err } = await run();
    const seen = JSON.parse(out || 'null') as { withThreads: number; withGuard: number; afterExit: number; afterLogger: string[]; afterOther: string[] } | null;
    expect(seen, err).to.not.equal(null);
    // One 'error' listener per live thread (node's pipe of its stderr), gone when the thread exits.
    expect(seen!.withThreads, err).to.equal(THREADS);
    expect(seen!.withGuard).to.equal(THREADS + 1);
    expect(seen!.afterExit).to.equal(2);
    expect(seen!.afterLogger, err).to.deep.equal([]);
    expect(seen!.afterOther).to.have.length(1);
    expect(seen!.afterOther[0]).to.match(/^MaxListenersExceededWarning: .* error listeners added to \[Socket\]/);
  });
});
