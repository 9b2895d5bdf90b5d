/**
 * A log stream that fails (EPIPE when the reader goes away, ENOSPC) must not take the proxy down:
 * without a listener, the stream's 'error' event is an uncaught exception that ends the process.
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { droppedLogLines } from '../../../src/observability/buffered-line-transport';
import { batched, createLogger, logRequestLine } from '../../../src/observability/logger';

/** Takes `okWrites` writes, then fails every write as a closed pipe does. */
class ClosingPipe extends Writable {
  text = '';
  writes = 0;
  constructor(private readonly okWrites: number) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error) => void): void {
    if (++this.writes > this.okWrites) return callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    this.text += chunk.toString();
    callback();
  }
}

/** What process.stderr is given while `run` runs (and its turns settle). */
async function stderrDuring(run: () => Promise<void>): Promise<string> {
  const original = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    await run();
  } finally {
    process.stderr.write = original;
  }
  return text;
}

const settle = () => new Promise((done) => setTimeout(done, 20));

describe('logger: a log output that fails', () => {
  it('keeps the process up, counts every line it could not write, and says so once on stderr', async () => {
    const pipe = new ClosingPipe(1);
    const logger = createLogger({ level: 'info', stream: pipe });
    const before = droppedLogLines();
    const notice = await stderrDuring(async () => {
      logger.info('written', { n: 1 });
      await settle();
      logger.info('lost in the failing write', { n: 2, pin: '1234' });
      await settle();
      for (let n = 3; n <= 5; n++) logger.info('lost after it', { n });
      await settle();
    });
    expect(pipe.text).to.contain('"message":"written"');
    expect(pipe.destroyed).to.equal(true);
    expect(droppedLogLines() - before).to.equal(4);
    const lines = notice.trim().split('\n');
    expect(lines).to.have.length(1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).to.include({ level: 'error', message: 'log output failed: the proxy keeps serving, log lines are dropped', code: 'EPIPE', countedIn: 'xks_log_lines_dropped_total' });
    // The notice names the failure, never what the lost lines held.
    expect(notice).not.to.contain('1234');
    expect(notice).not.to.contain('lost');
  });

  it('counts each line of a failed batch of request lines', async () => {
    const pipe = new ClosingPipe(0);
    const logger = createLogger({ level: 'info', stream: pipe, batch: true });
    const before = droppedLogLines();
    await stderrDuring(async () => {
      for (let n = 1; n <= 3; n++) logRequestLine(logger, 'info', 'xks request', { n });
      logger.info('xks request', batched({ n: 4 }));
      await settle();
    });
    expect(pipe.writes).to.equal(1); // one write for the turn's four lines, then none
    expect(droppedLogLines() - before).to.equal(4);
  });
});
