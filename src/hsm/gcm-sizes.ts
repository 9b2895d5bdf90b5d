/**
 * AES-GCM sizes, in a module of their own: the request layer checks answers against them, and
 * importing them must not load the PKCS#11 add-on (the cluster primary imports that layer).
 */

/** IV length every mode produces: 96 bits, the size GCM is specified for. */
export const GCM_IV_BYTES = 12;

/** Tag length of every GCM call: 128 bits, what the spec's authenticationTag carries. */
export const GCM_TAG_BYTES = 16;
