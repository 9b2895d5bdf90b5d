/**
 * stdout on a file that stops taking writes (a full disk: ENOSPC; a file-size limit: EFBIG) and later
 * takes them again. The real file-size limit is in test/integration/log-output-loss.test.ts; here a
 * scripted write function gives what a real disk cannot be made to do on cue: a write cut short
 * partway through a line, a clock that moves only when told.
 */
import { expect } from 'chai';
import { closeSync, openSync } from 'node:fs';
import { droppedLogLines } from '../../../src/observability/buffered-line-transport';
import { FILE_RETRY_MS, FileOutput, regularFileDescriptor, type WriteFn } from '../../../src/observability/log-file-output';
import { tempDir } from '../../support/temp-dir';

const ENOSPC = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

/** A file whose free space the test sets: writes take what fits, then fail with ENOSPC. */
class ScriptedDisk {
  text = '';
  room = Number.POSITIVE_INFINITY;
  calls = 0;
  readonly write: WriteFn = (_fd, bytes, offset, length) => {
    this.calls++;
    if (this.room <= 0) throw ENOSPC();
    const n = Math.min(length, this.room);
    this.text += Buffer.from(bytes.subarray(offset, offset + n)).toString();
    this.room -= n;
    return n;
  };
}

function harness() {
  const disk = new ScriptedDisk();
  let now = 1_000_000;
  const failures: string[] = [];
  const output = new FileOutput(
    7,
    {
      failed: (err) => failures.push(err.code ?? ''),
      recoveredLine: (lost, outageMs) => JSON.stringify({ message: 'recovered', lost, outageMs }),
    },
    disk.write,
    () => now,
  );
  return { disk, output, failures, advance: (ms: number) => (now += ms) };
}

describe('log file output: a file that stops taking writes', () => {
  it('writes whole chunks while there is room', () => {
    const { disk, output, failures } = harness();
    output.write('{"n":1}\n{"n":2}\n', 2);
    output.write('{"n":3}\n', 1);
    expect(disk.text).to.equal('{"n":1}\n{"n":2}\n{"n":3}\n');
    expect(failures).to.deep.equal([]);
  });

  it('counts what it loses, tries again once a second, and starts with a line saying how many were lost', () => {
    const { disk, output, failures, advance } = harness();
    const before = droppedLogLines();
    output.write('{"n":1}\n', 1);
    disk.room = 4; // the next write is cut short inside its line, then fails
    output.write('{"n":2}\n{"n":3}\n', 2);
    expect(failures).to.deep.equal(['ENOSPC']);
    expect(disk.text).to.equal('{"n":1}\n{"n"');

    // Within the second after the failure the file is not touched: a full disk costs no syscall per request.
    const calls = disk.calls;
    advance(FILE_RETRY_MS - 1);
    output.write('{"n":4}\n', 1);
    expect(disk.calls).to.equal(calls);

    // A second later it is tried again, still full: lost too, and still one notice for the outage.
    advance(1);
    output.write('{"n":5}\n', 1);
    expect(disk.calls).to.equal(calls + 1);
    expect(failures).to.have.length(1);

    // Room again (the file was truncated, or space freed): the torn line is ended, the loss said, the chunk written.
    disk.room = Number.POSITIVE_INFINITY;
    advance(FILE_RETRY_MS);
    output.write('{"n":6}\n', 1);
    const after = disk.text.slice('{"n":1}\n{"n"'.length).split('\n');
    expect(after[0]).to.equal(''); // the torn line ends here
    expect(JSON.parse(after[1]!)).to.deep.equal({ message: 'recovered', lost: 4, outageMs: 2 * FILE_RETRY_MS });
    expect(after.slice(2)).to.deep.equal(['{"n":6}', '']);
    expect(droppedLogLines() - before).to.equal(4);

    // Back to normal: written at once, no second note.
    output.write('{"n":7}\n', 1);
    expect(disk.text.endsWith('{"n":6}\n{"n":7}\n')).to.equal(true);
    expect(droppedLogLines() - before).to.equal(4);
  });

  it('reports each new outage, and a failure that took no bytes leaves no torn line', () => {
    const { disk, output, failures, advance } = harness();
    disk.room = 0;
    output.write('{"n":1}\n', 1);
    disk.room = Number.POSITIVE_INFINITY;
    advance(FILE_RETRY_MS);
    output.write('{"n":2}\n', 1);
    expect(disk.text.split('\n')[0]).to.match(/^\{"message":"recovered","lost":1,/);
    disk.room = 0;
    output.write('{"n":3}\n', 1);
    expect(failures).to.deep.equal(['ENOSPC', 'ENOSPC']);
  });

  it('fails with the real errno on a real descriptor (/dev/full)', () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const failures: string[] = [];
      const output = new FileOutput(fd, { failed: (err) => failures.push(err.code ?? ''), recoveredLine: () => '' });
      output.write('{"n":1}\n', 1);
      expect(failures).to.deep.equal(['ENOSPC']);
    } finally {
      closeSync(fd);
    }
  });

  it('is used for a regular file only: a pipe or a device keeps the stream', () => {
    const fd = openSync(`${tempDir('xks-logfd-')}/out.log`, 'a');
    const dev = openSync('/dev/null', 'w');
    try {
      expect(regularFileDescriptor(fd)).to.equal(fd);
      expect(regularFileDescriptor(dev)).to.equal(undefined);
      expect(regularFileDescriptor(987654)).to.equal(undefined);
    } finally {
      closeSync(fd);
      closeSync(dev);
    }
  });
});
