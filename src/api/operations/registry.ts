/**
 * The XKS operation registry. Adding an operation is one entry here and one file (its schema,
 * route, authorization flag and handler): routes, validators and Cedar actions follow from it.
 */
import { decryptOperation } from './decrypt';
import { encryptOperation } from './encrypt';
import { getHealthStatusOperation } from './get-health-status';
import { getKeyMetadataOperation } from './get-key-metadata';

export const XKS_OPERATIONS = [getHealthStatusOperation, getKeyMetadataOperation, encryptOperation, decryptOperation] as const;

export type XksOperationEntry = (typeof XKS_OPERATIONS)[number];
export type XksOperationName = XksOperationEntry['name'];
/** The operations subject to secondary authorization: each is a Cedar action of its name. */
export type AuthorizedOperation = Exclude<XksOperationName, Extract<XksOperationEntry, { probe: true }>['name']>;

/** Cedar action names, in registry order. */
export const AUTHORIZED_OPERATIONS: readonly AuthorizedOperation[] = XKS_OPERATIONS.filter((op) => !op.probe).map((op) => op.name as AuthorizedOperation);
