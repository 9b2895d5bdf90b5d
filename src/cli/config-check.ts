/**
 * `config check`: the config is valid, and each HSM it names can be reached, logged in to, and
 * does a real AES-GCM encrypt + decrypt with the health-check key.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { RuntimeConfig, RuntimeHsm } from '../config/runtime';
import { HsmError } from '../hsm';
import { servedKeys } from '../keys/served-keys';
import { closeHsm, openHsm } from './hsm-access';

export interface HsmCheck {
  id: string;
  connected: boolean;
  /** One line: what was checked, or why it failed. */
  detail: string;
  warnings: string[];
}

/** One entry per configured HSM (every member of `hsms`), in config order. */
export async function checkHsms(config: RuntimeConfig): Promise<HsmCheck[]> {
  const checks: HsmCheck[] = [];
  for (const member of config.hsms) checks.push(await checkHsm(config, member));
  return checks;
}

async function checkHsm(config: RuntimeConfig, member: RuntimeHsm): Promise<HsmCheck> {
  const id = member.id;
  let hsm;
  try {
    hsm = await openHsm(config, member);
  } catch (err) {
    return { id, connected: false, detail: `cannot open the token and log in: ${message(err)}`, warnings: [] };
  }
  try {
    const token = hsm.tokenInfo();
    const label = member.healthCheckKeyLabel;
    const plaintext = randomBytes(32);
    const aad = Buffer.from('xks-proxy config check');
    const started = process.hrtime.bigint();
    let roundTrip: Buffer;
    try {
      const sealed = await hsm.encrypt(label, plaintext, aad);
      roundTrip = await hsm.decrypt(label, sealed.ciphertext, sealed.iv, sealed.tag, aad);
    } catch (err) {
      const create = /^[A-Za-z0-9._-]{1,128}$/.test(label) ? `xks-proxy keys create ${label}` : `xks-proxy keys create health-check --label '${label}'`;
      const hint = err instanceof HsmError && err.kind === 'KeyNotFound' ? ` (create it with: ${create} -c <config file>)` : '';
      return { id, connected: false, detail: `logged in to token "${token.label}", but the test encrypt/decrypt with "${label}" failed: ${message(err)}${hint}`, warnings: [] };
    }
    if (roundTrip.length !== plaintext.length || !timingSafeEqual(roundTrip, plaintext)) {
      return { id, connected: false, detail: `the test decrypt with "${label}" returned different bytes`, warnings: [] };
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const warnings: string[] = [];
    const labels = new Set(await hsm.listAesKeyLabels());
    for (const key of servedKeys(config.keyStores, label)) {
      if (!labels.has(key.label)) warnings.push(`key store "${key.keyStore}": ${key.externalKeyId} maps to label "${key.label}", which is not on the token`);
    }
    return {
      id,
      connected: true,
      detail:
        `token "${token.label}" (${token.manufacturerId} ${token.model}, serial ${token.serialNumber}, firmware ${token.firmwareVersion}); ` +
        `test encrypt/decrypt with "${label}" passed in ${ms.toFixed(1)} ms`,
      warnings,
    };
  } finally {
    await closeHsm(hsm);
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
