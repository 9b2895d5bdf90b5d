import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const LOGGER_JS = join(__dirname, '../../../src/observability/logger.js');
const EXIT_JS = join(__dirname, '../../../src/observability/exit-when-written.js');

/**
 * A child that logs ~2 MB and then its last line, and exits through `how`; the parent reads nothing
 * for `readAfterMs`, as a lagging log reader would. 2 MB, not 200 KB: a paused parent still reads
 * ahead (a 64 KB read plus its stream buffer) on top of the 64 KB pipe, and in CI that once took in
 * all of 200 KB, so process.exit lost nothing.
 */
function run(how: 'exitWhenWritten' | 'process.exit', readAfterMs: number, timeoutMs = 2000): Promise<{ code: number | null; lastLineArrived: boolean; ms: number }> {
  const exit = how === 'exitWhenWritten' ? `require(${JSON.stringify(EXIT_JS)}).exitWhenWritten(3, process.exit, ${timeoutMs})` : 'process.exit(3)';
  const script = `
    const logger = require(${JSON.stringify(LOGGER_JS)}).createLogger({ level: 'info' });
    const filler = 'x'.repeat(1000);
    for (let i = 0; i < 2000; i++) logger.info('filler', { filler });
    logger.info('the last line');
    ${exit};`;
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.pause();
  setTimeout(() => child.stdout.resume(), readAfterMs);
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  let ms = 0;
  child.on('exit', () => (ms = Date.now() - started));
  // 'close' comes once the process has exited and its stdout has been read to the end.
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, lastLineArrived: out.includes('"message":"the last line"'), ms })));
}

describe('exitWhenWritten: the last log lines survive an exit', function () {
  this.timeout(20_000);

  it('with a log reader that lags, the last line arrives and the exit code is kept', async () => {
    const result = await run('exitWhenWritten', 700);
    expect(result.lastLineArrived).to.equal(true);
    expect(result.code).to.equal(3);
  });

  it('process.exit would have lost it (what the test above guards against)', async () => {
    const result = await run('process.exit', 700);
    expect(result.lastLineArrived).to.equal(false);
    expect(result.code).to.equal(3);
  });

  it('a reader that has stopped reading does not hold the process past the timeout', async () => {
    const result = await run('exitWhenWritten', 5000, 300);
    expect(result.code).to.equal(3);
    expect(result.ms).to.be.below(4000);
  });
});
