import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { verifyAuditLog } from '../../audit/verify';
import { fail } from '../process';

interface VerifyOptions {
  hmacKeyFile?: string;
  hmacKeyEnv?: string;
}

function hmacKey(options: VerifyOptions): Buffer | undefined {
  if (options.hmacKeyFile && options.hmacKeyEnv) throw new Error('give --hmac-key-file or --hmac-key-env, not both');
  if (options.hmacKeyFile) return Buffer.from(readFileSync(options.hmacKeyFile, 'utf8').trim(), 'utf8');
  if (options.hmacKeyEnv) {
    const value = process.env[options.hmacKeyEnv];
    if (!value) throw new Error(`environment variable ${options.hmacKeyEnv} is not set`);
    return Buffer.from(value, 'utf8');
  }
  return undefined;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('Work with the hash-chained audit log');
  audit
    .command('verify')
    .description('Check every entry\'s hash and chain link; exits 1 and names the first broken line')
    .argument('<file>', 'audit log file')
    .option('--hmac-key-file <file>', 'file holding the HMAC key the log was written with')
    .option('--hmac-key-env <variable>', 'environment variable holding the HMAC key')
    .addHelpText('after', '\nExample:\n  xks-proxy audit verify /var/log/xks-proxy/audit.log --hmac-key-file /etc/xks-proxy/audit-key\n')
    .action(async (file: string, options: VerifyOptions) => {
      let result;
      try {
        result = await verifyAuditLog(file, hmacKey(options));
      } catch (err) {
        fail(err);
      }
      const head = result.head ? `; last intact entry seq ${result.head.seq} hash ${result.head.hash}` : '';
      if (result.ok) {
        process.stdout.write(`${file}: OK, ${result.entries} entries${head}\n`);
        return;
      }
      process.stdout.write(`${file}: BROKEN at line ${result.broken?.line}: ${result.broken?.problem} (${result.entries} entries intact before it${head})\n`);
      process.exitCode = 1;
    });
}
