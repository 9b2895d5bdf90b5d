/**
 * t_hsm for the limit L = 1 / (t_https + t_hsm): the CPU time of exactly the HSM work one request of
 * an operation needs, done with raw pkcs11js (sync, one session, one thread), no proxy code.
 *   encrypt: C_GenerateRandom for the 12-byte IV, encrypt, and the verify-decrypt every XKS Encrypt does;
 *   decrypt: one decrypt.
 * The bench's 8 KB AAD (plus the proxy's metadata suffix, 4 B).
 * Args: modulePath tokenLabel keyLabel op bytes seconds; PIN in XKS_HSM_PIN. Prints {op, ops, cpuUsPerOp}.
 * PACE_GAP_MS: idle that long after each op (the thread sleeps), as between requests at KMS rates;
 * idleUsPerOp is then what the sleep and wake-up alone cost.
 */
import { randomBytes } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';

const GCM = (iv: Buffer, aad: Buffer) => ({ mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: 96, aad, tagBits: 128 } as pkcs11js.GcmParams });

function main(): void {
  const [modulePath, tokenLabel, keyLabel, op, bytes, secondsArg] = process.argv.slice(2) as string[];
  const p11 = new pkcs11js.PKCS11();
  p11.load(modulePath as string);
  p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === tokenLabel);
  if (!slot) throw new Error(`token ${tokenLabel} not found`);
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  p11.C_Login(session, pkcs11js.CKU_USER, process.env.XKS_HSM_PIN as string);
  p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: keyLabel as string }]);
  const key = p11.C_FindObjects(session);
  p11.C_FindObjectsFinal(session);
  if (!key) throw new Error(`key ${keyLabel} not found`);

  const plaintext = randomBytes(Number(bytes));
  const aad = randomBytes(8192 + 4);
  const sealed = Buffer.alloc(plaintext.length + 16);
  const opened = Buffer.alloc(plaintext.length + 16);
  const fixedIv = p11.C_GenerateRandom(session, Buffer.alloc(12));
  p11.C_EncryptInit(session, GCM(fixedIv, aad), key);
  const fixedSealed = Buffer.from(p11.C_Encrypt(session, plaintext, sealed));

  const once = op === 'encrypt'
    ? () => {
        const iv = p11.C_GenerateRandom(session, Buffer.alloc(12));
        p11.C_EncryptInit(session, GCM(iv, aad), key);
        const out = p11.C_Encrypt(session, plaintext, sealed);
        p11.C_DecryptInit(session, GCM(iv, aad), key);
        p11.C_Decrypt(session, out, opened);
      }
    : () => {
        p11.C_DecryptInit(session, GCM(fixedIv, aad), key);
        p11.C_Decrypt(session, fixedSealed, opened);
      };
  const gapMs = Number(process.env.PACE_GAP_MS ?? 0);
  const idle = new Int32Array(new SharedArrayBuffer(4));
  const paced = gapMs > 0 ? () => {
    once();
    Atomics.wait(idle, 0, 0, gapMs);
  } : once;
  for (let i = 0; i < 200; i++) paced(); // warm-up
  let ops = 0;
  const cpu0 = process.cpuUsage();
  const deadline = Date.now() + Number(secondsArg) * 1000;
  while (Date.now() < deadline) {
    for (let i = 0; i < 50; i++) paced();
    ops += 50;
  }
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ op, ops, cpuUsPerOp: (cpu.user + cpu.system) / ops, ...(gapMs > 0 ? { idleUsPerOp: idleCost(idle, gapMs) } : {}) })}\n`);
  p11.C_Logout(session);
  p11.C_Finalize();
}

/** CPU µs of the sleep and wake-up alone, no work between: part of each paced op's cost. */
function idleCost(idle: Int32Array, gapMs: number): number {
  const n = 2000;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) Atomics.wait(idle, 0, 0, gapMs);
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / n;
}

main();
