/**
 * Ceiling 2: raw pkcs11js AES-256-GCM encrypt (4300 B, 8 KB AAD) against the same SoftHSM token, async,
 * with N sessions each running one operation at a time: what the HSM path can do without HTTP.
 * Args: modulePath tokenLabel keyLabel sessions seconds; PIN in XKS_HSM_PIN. Prints JSON.
 */
import { randomBytes } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';

async function main(): Promise<void> {
  const [modulePath, tokenLabel, keyLabel, sessionsArg, secondsArg] = process.argv.slice(2) as string[];
  const p11 = new pkcs11js.PKCS11();
  p11.load(modulePath as string);
  p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === tokenLabel);
  if (!slot) throw new Error(`token ${tokenLabel} not found`);
  const sessions = Array.from({ length: Number(sessionsArg) }, () => p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
  p11.C_Login(sessions[0] as Buffer, pkcs11js.CKU_USER, process.env.XKS_HSM_PIN as string);
  p11.C_FindObjectsInit(sessions[0] as Buffer, [{ type: pkcs11js.CKA_LABEL, value: keyLabel as string }]);
  const key = p11.C_FindObjects(sessions[0] as Buffer);
  p11.C_FindObjectsFinal(sessions[0] as Buffer);
  if (!key) throw new Error(`key ${keyLabel} not found`);

  const plaintext = randomBytes(4300);
  const aad = randomBytes(8192 + 4);
  const latencies: number[] = [];
  const deadline = Date.now() + Number(secondsArg) * 1000;
  const worker = async (session: Buffer) => {
    const out = Buffer.alloc(plaintext.length + 16);
    while (Date.now() < deadline) {
      const started = process.hrtime.bigint();
      const iv = p11.C_GenerateRandom(session, Buffer.alloc(12));
      p11.C_EncryptInit(session, { mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, ivBits: 96, aad, tagBits: 128 } as pkcs11js.GcmParams }, key);
      await p11.C_EncryptAsync(session, plaintext, out);
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  };
  const started = Date.now();
  await Promise.all(sessions.map(worker));
  const elapsed = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  process.stdout.write(`${JSON.stringify({ opsPerSec: latencies.length / elapsed, p50: pct(50), p90: pct(90), p99: pct(99), max: latencies[latencies.length - 1] ?? 0 })}\n`);
  p11.C_Finalize();
}
main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
