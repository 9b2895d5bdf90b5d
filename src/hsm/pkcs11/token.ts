/** Finding the token a configuration names, and describing it. */
import type * as pkcs11js from 'pkcs11js';
import { HsmError } from '../errors';
import type { TokenInfo } from '../types';
import { call } from './errors';
import type { SlotId } from './handles';

export interface TokenSelector {
  label?: string;
  serial?: string;
}

/** Finds the token by label and/or serial: SoftHSM gives tokens random slot IDs, so never by index. */
export function findToken(lib: pkcs11js.PKCS11, modulePath: string, selector: TokenSelector): { slot: SlotId; description: TokenInfo } {
  const info = call('C_GetInfo', () => lib.C_GetInfo());
  const matches: Array<{ slot: SlotId; token: pkcs11js.TokenInfo }> = [];
  for (const slot of call('C_GetSlotList', () => lib.C_GetSlotList(true))) {
    const token = call('C_GetTokenInfo', () => lib.C_GetTokenInfo(slot));
    if (selector.label !== undefined && token.label.trim() !== selector.label) continue;
    if (selector.serial !== undefined && token.serialNumber.trim() !== selector.serial) continue;
    matches.push({ slot, token });
  }
  const wanted = [
    selector.label !== undefined ? `label "${selector.label}"` : undefined,
    selector.serial !== undefined ? `serial "${selector.serial}"` : undefined,
  ]
    .filter((part) => part !== undefined)
    .join(' and ');
  const [match] = matches;
  if (match === undefined) throw new HsmError('Device', `no token with ${wanted} in ${modulePath}`);
  if (matches.length > 1) {
    throw new HsmError('Internal', `${matches.length} tokens match ${wanted}: select the token by serial`);
  }
  const { slot, token } = match;
  return {
    slot,
    description: {
      label: token.label.trim(),
      manufacturerId: token.manufacturerID.trim(),
      model: token.model.trim(),
      serialNumber: token.serialNumber.trim(),
      hardwareVersion: version(token.hardwareVersion),
      firmwareVersion: version(token.firmwareVersion),
      libraryDescription: info.libraryDescription.trim(),
      libraryVersion: version(info.libraryVersion),
    },
  };
}

function version(v: pkcs11js.Version): string {
  return `${v.major}.${v.minor}`;
}
