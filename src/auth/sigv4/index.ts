// Public API of the SigV4 verification layer.
export {
  SigV4Verifier,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  type IncomingSignedRequest,
  type SigV4VerifierOptions,
  type SecretLookup,
  type SigV4Result,
  type SigV4FailureReason,
} from './verifier';
