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

/**
 * Finds the token by label and/or serial: SoftHSM gives tokens random slot IDs, so never by index.
 * A slot whose token cannot be read is skipped, not fatal: SoftHSM answers CKR_GENERAL_ERROR for a
 * token deleted since C_Initialize, and a vendor's inactive partition may fail too, while ours is
 * fine. Only if every slot fails is the first failure thrown as it came (its kind may call for a
 * re-initialisation).
 */
export function findToken(lib: pkcs11js.PKCS11, modulePath: string, selector: TokenSelector): { slot: SlotId; description: TokenInfo } {
  const info = call('C_GetInfo', () => lib.C_GetInfo());
  const matches: Array<{ slot: SlotId; token: pkcs11js.TokenInfo }> = [];
  const slots = call('C_GetSlotList', () => lib.C_GetSlotList(true));
  const unreadable: HsmError[] = [];
  for (const slot of slots) {
    let token: pkcs11js.TokenInfo;
    try {
      token = call('C_GetTokenInfo', () => lib.C_GetTokenInfo(slot));
    } catch (error) {
      unreadable.push(error as HsmError);
      continue;
    }
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
  if (match === undefined) {
    if (unreadable.length > 0 && unreadable.length === slots.length) throw unreadable[0] as HsmError;
    const skipped = unreadable.length === 0 ? '' : ` (${unreadable.length} of ${slots.length} slots could not be read: ${[...new Set(unreadable.map((e) => e.returnCode ?? e.message))].join(', ')})`;
    throw new HsmError('Device', `no token with ${wanted} in ${modulePath}${skipped}`);
  }
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
