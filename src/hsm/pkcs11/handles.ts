import type * as pkcs11js from 'pkcs11js';

/** The raw PKCS#11 API object, for interposers (fault injection, vendor emulation in tests). */
export type Pkcs11Api = pkcs11js.PKCS11;
/** Wraps the PKCS#11 API one HSM sees; returns the object to call instead. */
export type Pkcs11Interposer = (api: Pkcs11Api) => Pkcs11Api;

/** Opaque PKCS#11 handles (pkcs11js passes CK_ULONGs as Buffers). */
export type SlotId = Buffer;
export type SessionHandle = Buffer;
export type ObjectHandle = Buffer;
