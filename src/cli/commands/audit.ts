import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { rotationLinkProblem, verifyAuditLog, type VerifyResult } from '../../audit/verify';
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
    .argument('<files...>', 'audit log files; several: oldest first, each a rotation of the one before (its audit-open "previous" is that file\'s last entry)')
    .option('--hmac-key-file <file>', 'file holding the HMAC key the log was written with')
    .option('--hmac-key-env <variable>', 'environment variable holding the HMAC key')
    .addHelpText(
      'after',
      '\nExamples:\n  xks-proxy audit verify /var/log/xks-proxy/audit.log --hmac-key-file /etc/xks-proxy/audit-key\n' +
        '  xks-proxy audit verify audit.log.2 audit.log.1 audit.log --hmac-key-file /etc/xks-proxy/audit-key\n',
    )
    .action(async (files: string[], options: VerifyOptions) => {
      let key: Buffer | undefined;
      try {
        key = hmacKey(options);
      } catch (err) {
        fail(err);
      }
      let before: VerifyResult | undefined;
      for (const [i, file] of files.entries()) {
        let result: VerifyResult;
        try {
          result = await verifyAuditLog(file, key);
        } catch (err) {
          fail(err);
        }
        const head = result.head ? `; last intact entry seq ${result.head.seq} hash ${result.head.hash}` : '';
        if (!result.ok) {
          process.stdout.write(`${file}: BROKEN at line ${result.broken?.line}: ${result.broken?.problem} (${result.entries} entries intact before it${head})\n`);
          process.exitCode = 1;
        } else {
          const link = before?.ok ? rotationLinkProblem(before, result) : undefined;
          if (link) {
            process.stdout.write(`${file}: NOT CHAINED to ${files[i - 1]}: ${link}\n`);
            process.exitCode = 1;
          } else {
            process.stdout.write(`${file}: OK, ${result.entries} entries${head}${i > 0 && before?.ok ? `; continues ${files[i - 1]}` : ''}\n`);
          }
        }
        before = result;
      }
    });
}
