/** KeyId forms: key ID, alias/..., arn:aws:kms:<region>:<account>:key/<id> and ...:alias/<name>. */
import { lookupExternalKey, type ExternalKey } from '../api/key-lookup';
import type { KmsApiRuntime } from '../config/kms-api';
import type { KmsContext } from './context';
import { KmsError, toKmsError } from './errors';

const ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):([0-9]{12}):((?:key|alias)\/.+)$/;

export interface ResolvedKey {
  keyId: string;
  key: ExternalKey;
}

export function keyArn(config: KmsApiRuntime, keyId: string): string {
  return `arn:aws:kms:${config.region}:${config.accountId}:key/${keyId}`;
}

export function aliasArn(config: KmsApiRuntime, alias: string): string {
  return `arn:aws:kms:${config.region}:${config.accountId}:${alias}`;
}

/** The key ID a KeyId member names (NotFoundException for unknown aliases and foreign ARNs). */
export function keyIdFrom(config: KmsApiRuntime, value: unknown, member = 'KeyId'): string {
  if (typeof value !== 'string' || value.length < 1 || value.length > 2048) {
    throw new KmsError('ValidationException', `${member} must be a string of 1-2048 characters`);
  }
  let id = value;
  const arn = ARN.exec(value);
  if (arn) {
    if (arn[1] !== config.region || arn[2] !== config.accountId) throw new KmsError('NotFoundException', `${member} names a key in another region or account`);
    id = arn[3] as string;
    // key/<id> names a key ID, never an alias: key/alias/app is a key ID no key has.
    if (id.startsWith('key/')) {
      id = id.slice(4);
      if (id.startsWith('alias/')) throw new KmsError('NotFoundException', 'Key is not found');
    }
  } else if (value.startsWith('arn:')) {
    throw new KmsError('NotFoundException', `${member} is not a valid KMS key ARN`);
  }
  if (id.startsWith('alias/')) {
    const target = config.aliases.get(id);
    if (!target) throw new KmsError('NotFoundException', `${member} names an alias that is not found`);
    return target;
  }
  return id;
}

export function resolveKey(ctx: KmsContext, keyId: string): ResolvedKey {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(keyId)) throw new KmsError('NotFoundException', 'Key is not found');
  try {
    return { keyId, key: lookupExternalKey(ctx.store, keyId, ctx.services.healthCheckKeyLabel) };
  } catch (err) {
    const mapped = toKmsError(err);
    throw mapped.type === 'NotFoundException' ? new KmsError('NotFoundException', 'Key is not found') : mapped;
  }
}
