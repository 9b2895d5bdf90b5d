import type { KmsAction } from '../../authz/kms-actions';
import type { KmsContext } from '../context';
import type { Body } from '../input';

/**
 * One KMS API operation, as the registry (registry.ts) lists it: the handler's dispatch and the
 * operation names are derived from these entries; `actions` must cover every action it authorizes.
 */
export interface KmsOperationSpec<Input> {
  /** The X-Amz-Target suffix: TrentService.<name>. */
  name: string;
  /** The kms: actions it authorizes (credential actions[] and Cedar actions). */
  actions: readonly KmsAction[];
  /**
   * Reads and checks the request members KMS validates before authorization (ValidationException
   * and friends); members whose check depends on the caller's rights stay in handle.
   */
  input(body: Body, ctx: KmsContext): Input;
  handle(ctx: KmsContext, input: Input): Promise<unknown>;
}

/** The registry's element type: an entry's Input type is its own business (input feeds its own handle). */
export type KmsOperationEntry = KmsOperationSpec<unknown>;

/** Keeps an entry's Input type tied between input() and handle(). */
export function kmsOperation<Input>(spec: KmsOperationSpec<Input>): KmsOperationSpec<Input> {
  return spec;
}
