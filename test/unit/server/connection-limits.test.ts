import { expect } from 'chai';
import { ConfigError } from '../../../src/config/load';
import { DEFAULT_MAX_CONNECTIONS, openFileLimit, resolveConnectionCap } from '../../../src/server/connection-limits';

const LIMITS = (soft: string, hard = soft) => [
  'Limit                     Soft Limit           Hard Limit           Units     ',
  'Max processes             63432                63432                processes ',
  `Max open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     `,
  'Max locked memory         8388608              8388608              bytes     ',
].join('\n');

describe('connection limits: the cap against the open-file limit', () => {
  it('reads the soft open-file limit from /proc/self/limits text', () => {
    expect(openFileLimit(LIMITS('1024', '524288'))).to.equal(1024);
    expect(openFileLimit(LIMITS('unlimited'))).to.equal(undefined);
    expect(openFileLimit('no such line')).to.equal(undefined);
  });

  it('reads this process\'s real limit', () => {
    const limit = openFileLimit();
    expect(limit).to.be.a('number').and.greaterThan(0);
  });

  it('defaults to 4096 connections, or the limit minus the reserve when that is lower', () => {
    expect(resolveConnectionCap({ reservedDescriptors: 256 }, 1_048_576)).to.deep.equal({ maxConnections: DEFAULT_MAX_CONNECTIONS, ceiling: 1_048_320, openFileLimit: 1_048_576 });
    expect(resolveConnectionCap({ reservedDescriptors: 256 }, 1024).maxConnections).to.equal(768);
  });

  it('keeps a configured cap that leaves the reserve free', () => {
    expect(resolveConnectionCap({ maxConnections: 768, reservedDescriptors: 256 }, 1024).maxConnections).to.equal(768);
    expect(resolveConnectionCap({ maxConnections: 50, reservedDescriptors: 256 }, undefined).maxConnections).to.equal(50);
  });

  it('refuses a cap that would eat into the reserve, naming the ceiling', () => {
    expect(() => resolveConnectionCap({ maxConnections: 769, reservedDescriptors: 256 }, 1024))
      .to.throw(ConfigError, /server\.maxConnections \(769\).*open-file limit \(1024\).*at most 768/);
  });

  it('refuses to start when the reserve leaves no room for connections at all', () => {
    expect(() => resolveConnectionCap({ reservedDescriptors: 256 }, 260)).to.throw(ConfigError, /leaves no room for connections/);
  });
});
