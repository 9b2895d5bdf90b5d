/**
 * What a reload does with reload.watch and server.shutdownTimeoutMs: reload.watch is applied (the
 * watcher starts or stops); shutdownTimeoutMs needs a restart, and the reload says so.
 */
import { expect } from 'chai';
import { readConfigDoc, replaceFile, type ConfigDoc } from '../support/config-file';
import { startHarness, type Harness } from '../support/proxy-harness';
import { waitFor } from '../support/wait';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('reload: reload.watch and server.shutdownTimeoutMs (integration)', () => {
  let h: Harness;
  const generation = () => h.proxy.runtime.generation();
  const write = (change: (doc: ConfigDoc) => void): void => {
    const doc = readConfigDoc(h);
    change(doc);
    replaceFile(h.configPath as string, JSON.stringify(doc, null, 2));
  };
  const logged = (message: string) => h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === message);

  before(async function () {
    this.timeout(60_000);
    h = await startHarness({ fromFile: true, configure: (doc) => (doc.reload = { watch: false, debounceMs: 50 }) });
  });
  after(async () => h?.stop());

  it('reload.watch false -> true starts watching the files, true -> false stops it', async () => {
    write((doc) => (doc.reload.watch = true));
    expect(h.proxy.reload().ok).to.equal(true);
    const g = generation();
    write((doc) => (doc.limits.maxInFlightRequests = 31));
    await waitFor(() => generation() > g, 'a reload by the watcher');
    expect(h.proxy.runtime.config().limits.maxInFlightRequests).to.equal(31);

    write((doc) => (doc.reload.watch = false));
    await waitFor(() => h.proxy.runtime.config().security?.reload.watch === false, 'the watcher to take watch: false');
    const stopped = generation();
    write((doc) => (doc.limits.maxInFlightRequests = 30));
    await sleep(600);
    expect(generation()).to.equal(stopped);
    expect(logged('config file watching stopped (reload.watch: false); SIGHUP still reloads')).to.have.length(1);
  });

  it('a changed server.shutdownTimeoutMs is reported as needing a restart, and the running value stays', () => {
    const running = h.proxy.runtime.config().server.shutdownTimeoutMs;
    write((doc) => (doc.server.shutdownTimeoutMs = running + 1000));
    const result = h.proxy.reload();
    expect(result.ok).to.equal(true);
    expect(result.restartRequired).to.deep.equal(['server.shutdownTimeoutMs']);
    expect(h.proxy.runtime.config().server.shutdownTimeoutMs).to.equal(running);
    expect(logged('config changes that need a restart were not applied').at(-1)?.restartRequired).to.equal('server.shutdownTimeoutMs');
  });
});
