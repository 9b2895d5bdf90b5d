import { expect } from 'chai';
import type { RuntimeConfig } from '../../../src/config/runtime';
import { sizeThreadPool } from '../../../src/server/thread-pool';

/** HSMs whose calls run on the main thread (pkcs11Threads 0): their async calls take libuv threads. */
const configWith = (...pools: number[]) => ({ hsms: pools.map((sessionPoolSize) => ({ sessionPoolSize, pkcs11Threads: 0 })) }) as unknown as RuntimeConfig;

describe('thread pool sizing', () => {
  it('gives every HSM session of every cluster member a libuv thread, on top of the default 4', () => {
    const env: NodeJS.ProcessEnv = {};
    expect(sizeThreadPool(configWith(8), env)).to.equal(12);
    expect(env.UV_THREADPOOL_SIZE).to.equal('12');
    expect(sizeThreadPool(configWith(8, 16, 4), {})).to.equal(32);
  });

  it('gives HSMs with PKCS#11 threads (the default) no libuv threads: they call synchronously on those', () => {
    const config = { hsms: [{ sessionPoolSize: 8 }, { sessionPoolSize: 16, pkcs11Threads: 4 }, { sessionPoolSize: 2, pkcs11Threads: 0 }] } as unknown as RuntimeConfig;
    expect(sizeThreadPool(config, {})).to.equal(6);
  });

  it('caps at libuv maximum of 1024', () => {
    expect(sizeThreadPool(configWith(1024, 1024), {})).to.equal(1024);
  });

  it("keeps an operator's UV_THREADPOOL_SIZE", () => {
    const env: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: '2' };
    expect(sizeThreadPool(configWith(8), env)).to.equal(2);
    expect(env.UV_THREADPOOL_SIZE).to.equal('2');
  });

  it('replaces a UV_THREADPOOL_SIZE that is not a positive integer', () => {
    const env: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: 'lots' };
    expect(sizeThreadPool(configWith(8), env)).to.equal(12);
    expect(env.UV_THREADPOOL_SIZE).to.equal('12');
  });
});
