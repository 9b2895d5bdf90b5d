import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Registry } from 'prom-client';
import * as ts from 'typescript';
import { callerFamilies, clusterFamilies, connectionFamilies, hsmFamilies, logFamilies, requestFamilies, securityFamilies } from '../../../src/observability/metric-catalogue';

const SRC = join(__dirname, '../../../../src');
const CATALOGUE = 'observability/metric-catalogue.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? sourceFiles(path) : entry.endsWith('.ts') ? [path] : [];
  });
}

describe('metric catalogue', () => {
  it('is the only place in src/ that declares a metric family', () => {
    const declaring = sourceFiles(SRC)
      .filter((file) => /\bnew\s+(Counter|Gauge|Histogram|Summary)\s*(<[^>]*>)?\s*\(/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file).split('\\').join('/'));
    expect(declaring).to.deep.equal([CATALOGUE]);
  });

  it('imports nothing but prom-client, so the cluster primary can load it without the HSM layer', () => {
    const { importedFiles } = ts.preProcessFile(readFileSync(join(SRC, CATALOGUE), 'utf8'), true, true);
    expect(importedFiles.map((f) => f.fileName)).to.deep.equal(['prom-client']);
  });

  it('declares each name once: every group fits on one registry', async () => {
    const registry = new Registry();
    const noop = (): void => undefined;
    requestFamilies(registry);
    hsmFamilies(registry, noop);
    callerFamilies(registry);
    securityFamilies(registry, { throttleTokens: noop, credentialAge: noop, certificateExpiry: noop, readableSecretFiles: noop });
    connectionFamilies(registry);
    clusterFamilies(registry, noop);
    logFamilies(registry, () => 0);
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names).to.have.length(36);
    for (const name of names) expect(name).to.match(/^xks_[a-z_]+$/);
  });
});
