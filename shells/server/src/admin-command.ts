import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { Errors, Kernel, loadConfig } from '@wanllmdb/core';
import { authAdminRef } from '@wanllmdb/plugin-auth';
import { defaultPlugins } from './default-plugins.js';

/** Reads one line of standard input (the password, without echoing it into shell history or `ps`). */
async function readLine(): Promise<string> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    for await (const line of rl) return line;
    return '';
  } finally {
    rl.close();
  }
}

/** `wanllmdb admin …`: account administration on the server's own data (the server may be stopped). */
export function registerAdminCommand(program: Command): void {
  const admin = program.command('admin').description('Administer accounts directly on the data folder or database.');
  admin
    .command('create-user')
    .description('Create an account (with --admin: a site administrator). The password comes from --password-stdin or WANLLMDB_ADMIN_PASSWORD.')
    .requiredOption('--email <email>', 'the account\'s email (it signs in with it)')
    .option('--username <name>', 'default: the part of the email before @')
    .option('--full-name <name>', 'display name')
    .option('--admin', 'make a site administrator', false)
    .option('--password-stdin', 'read the password from the first line of standard input', false)
    .option('--data <dir>', 'data folder [env WANLLMDB_DATA, default ./.wanllmdb]')
    .option('--db <url>', 'sqlite:///path.db | postgres://… [env WANLLMDB_DB]')
    .action(async (o: { email: string; username?: string; fullName?: string; admin: boolean; passwordStdin: boolean; data?: string; db?: string }) => {
      const password = o.passwordStdin ? await readLine() : process.env.WANLLMDB_ADMIN_PASSWORD ?? '';
      if (!password) {
        throw Errors.CONFIG_INVALID('No password given: pipe it to --password-stdin (echo "$PW" | wanllmdb admin create-user … --password-stdin) or set WANLLMDB_ADMIN_PASSWORD.');
      }
      const config = loadConfig({ flags: { dataDir: o.data, db: o.db, logLevel: 'warn' } });
      const kernel = new Kernel({ plugins: defaultPlugins, config });
      await kernel.start();
      try {
        const user = await kernel.get(authAdminRef).createUser({
          email: o.email,
          password,
          username: o.username,
          fullName: o.fullName,
          superuser: o.admin,
        });
        console.log(`created ${o.admin ? 'administrator' : 'user'} ${user.email} (${user.username}, id ${user.id})`);
      } finally {
        await kernel.stop();
      }
    });
}
