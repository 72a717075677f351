import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ArtifactClient, TransferProgress } from '@wanllmdb/sdk';
import { mb, progressBar } from './progress-bar.js';

interface StoreFlags {
  url?: string;
  apiKey?: string;
  data?: string;
  project?: string;
}

/** The bar for a transfer: files (hashing, downloads) or bodies (uploads), and megabytes moved. */
function transferProgress() {
  const bar = progressBar();
  let phase = '';
  return {
    onProgress(p: TransferProgress) {
      const pct = p.total ? Math.floor((100 * p.done) / p.total) : 100;
      const what = p.phase === 'uploading' ? 'bodies' : p.phase === 'committing' ? 'version' : 'files';
      const changed = p.phase !== phase;
      if (changed) bar.done();
      phase = p.phase;
      bar.update(p.phase, pct, `${p.done}/${p.total} ${what} · ${mb(p.bytes)} MB`, changed || p.done === p.total);
    },
    done: () => bar.done(),
  };
}

async function withClient<T>(o: StoreFlags, work: (client: ArtifactClient, project: string) => Promise<T>): Promise<T> {
  const { openArtifactClient } = await import('@wanllmdb/sdk');
  const { client, close } = await openArtifactClient({ url: o.url, apiKey: o.apiKey ?? process.env.WANLLMDB_API_KEY, dataDir: o.data });
  try {
    return await work(client, o.project ?? process.env.WANLLMDB_PROJECT ?? 'default');
  } finally {
    await close();
  }
}

const storeOptions = (c: Command) =>
  c
    .option('--url <url>', 'server, grpc://host:port (default: the local embedded store) [env WANLLMDB_URL]', process.env.WANLLMDB_URL || undefined)
    .option('--api-key <key>', 'API key for the server [env WANLLMDB_API_KEY]')
    .option('--data <dir>', 'data folder of the local store when there is no --url [env WANLLMDB_DATA, default ./.wanllmdb]')
    .option('--project <project>', 'project id or slug [env WANLLMDB_PROJECT, default "default"]');

const collect = (v: string, all: string[] = []) => [...all, v];

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 7 * 86_400 };

/** "30d", "12h", "90m", "2w", "45s" or plain seconds → seconds. */
function seconds(text: string, flag: string): number {
  const m = /^(\d+)\s*([smhdw]?)$/.exec(text.trim());
  if (!m) throw new Error(`${flag} must be an age such as 30d, 12h, 90m, 2w or a number of seconds, not "${text}"`);
  return Number(m[1]) * UNITS[m[2] || 's']!;
}

/** An age ("30d") as the instant that long ago, or an RFC 3339 time as given. */
function instantOf(text: string, flag: string): string {
  if (/^\d{4}-\d{2}-\d{2}T/.test(text.trim())) return text.trim();
  return new Date(Date.now() - seconds(text, flag) * 1000).toISOString();
}

function wholeNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${flag} must be a whole number, 0 or more, not "${text}"`);
  return n;
}

const ageText = (s: number) => (s % 86_400 === 0 ? `${s / 86_400}d` : s % 3600 === 0 ? `${s / 3600}h` : `${s}s`);

function ruleText(r: { keepLast: number; keepAliased: boolean; maxAgeSeconds: number }): string {
  const parts = [r.keepLast ? `keep the last ${r.keepLast}` : '', r.maxAgeSeconds ? `delete after ${ageText(r.maxAgeSeconds)}` : '', r.keepAliased ? 'keep aliased' : 'aliased versions too'];
  return r.keepLast || r.maxAgeSeconds ? parts.filter(Boolean).join(', ') : 'deletes nothing (no keep-last, no max age)';
}

/** One line for a bulk deletion: how many, which (the first few), and what the next gc frees. */
function deletionLine(name: string, r: { dryRun: boolean; deleted: number; versions: string[]; bytes: number; missing: string[] }): string {
  const shown = r.versions.length > 6 ? `${r.versions.slice(0, 3).join(', ')} … ${r.versions.at(-1)}` : r.versions.join(', ');
  const missing = r.missing.length ? ` · not there: ${r.missing.slice(0, 5).join(', ')}${r.missing.length > 5 ? ' …' : ''}` : '';
  return `${r.dryRun ? 'would delete' : 'deleted'} ${r.deleted} versions of ${name}${shown ? ` (${shown})` : ''} · ${mb(r.bytes)} MB freed at the next gc${missing}\n`;
}

/** `wanllmdb artifact put|get|ls|diff|alias|rm|retention|gc|cache`: artifacts from a shell, with progress. */
export function registerArtifactCommand(program: Command): void {
  const artifact = program.command('artifact').description('Version datasets, models and other files: put, get, ls, diff, alias, rm, retention, gc, cache.');

  storeOptions(
    artifact
      .command('put')
      .description('Store a file or a folder as the next version of an artifact (only what the project lacks is sent).')
      .argument('[path]', 'file or folder (optional with --reference)')
      .requiredOption('--name <name>', 'artifact name')
      .option('--type <type>', 'dataset, model, result, or any kebab-case word', 'dataset')
      .option('--alias <alias>', 'alias to point at the version (repeatable)', collect)
      .option('--description <text>', 'what this version is')
      .option('--reference <uri>', 'record an s3://, file:// or http(s):// object or prefix without copying it (repeatable; S3 from the AWS environment)', collect),
  ).action(async (path: string | undefined, o: StoreFlags & { name: string; type: string; alias?: string[]; description?: string; reference?: string[] }) => {
    const { Artifact } = await import('@wanllmdb/sdk');
    const art = new Artifact(o.name, o.type, { description: o.description });
    if (!path && !o.reference?.length) throw new Error('give a file or folder to store, or --reference <uri> (or both)');
    if (path && (await stat(path)).isDirectory()) await art.addDir(path);
    else if (path) await art.addFile(path);
    for (const uri of o.reference ?? []) art.addReference(uri);
    const progress = transferProgress();
    const res = await withClient(o, (c, project) => c.log(project, art, { aliases: o.alias ?? [], onProgress: progress.onProgress })).finally(() => progress.done());
    const v = res.version;
    process.stdout.write(
      `${o.name}:${v.version} ${res.created ? 'stored' : 'unchanged (same files as the latest version)'} · ${v.fileCount} files · ${mb(v.size)} MB · ${mb(res.uploadedBytes)} MB sent · ${v.digest}${v.aliases.length ? ` · ${v.aliases.join(', ')}` : ''}\n`,
    );
  });

  storeOptions(
    artifact
      .command('get')
      .description('Download a version into a folder (verified, through the local cache; references are fetched from their source and checked).')
      .argument('<ref>', 'name, name:alias, name:v3 or project/name:alias')
      .option('--out <dir>', 'folder to write (default ./artifacts/<name>:<version>)'),
  ).action(async (ref: string, o: StoreFlags & { out?: string }) => {
    const progress = transferProgress();
    const dir = await withClient(o, async (c, project) => {
      const { artifact: a, version } = await c.resolve(project, ref);
      return c.download(a.id, version, o.out ?? `artifacts/${a.name}:${version.version}`, { onProgress: progress.onProgress });
    }).finally(() => progress.done());
    process.stdout.write(`${dir}\n`);
  });

  storeOptions(
    artifact
      .command('ls')
      .description("List a project's artifacts, or the versions of one.")
      .argument('[name]', 'an artifact: list its versions')
      .option('--type <type>', 'only artifacts of this type'),
  ).action(async (name: string | undefined, o: StoreFlags & { type?: string }) => {
    await withClient(o, async (c, project) => {
      if (!name) {
        const page = await c.list(project, { type: o.type });
        for (const a of page.data) process.stdout.write(`${a.name}\t${a.type}\t${a.versionCount} versions\tlatest ${a.latestVersion || '-'}\n`);
        return;
      }
      const a = await c.find(project, name);
      if (!a) throw new Error(`no artifact "${name}" in project ${project}`);
      const page = await c.versions(a.id);
      for (const v of page.data) process.stdout.write(`${v.version}\t${v.fileCount} files\t${mb(v.size)} MB\t${v.createdAt}\t${v.aliases.join(',')}\n`);
    });
  });

  storeOptions(
    artifact.command('diff').description('Files added, removed and changed between two versions.').argument('<name>').argument('<from>', 'version or alias').argument('<to>', 'version or alias'),
  ).action(async (name: string, from: string, to: string, o: StoreFlags) => {
    await withClient(o, async (c, project) => {
      const { artifact: a } = await c.resolve(project, `${name}:${to}`);
      const d = await c.diff(a.id, from, to);
      const sign = { added: '+', removed: '-', changed: '~' } as const;
      for (const e of d.data) process.stdout.write(`${sign[e.status as keyof typeof sign] ?? '?'} ${e.path}\t${e.fromSize} → ${e.toSize} bytes\n`);
      process.stdout.write(`${d.added} added, ${d.removed} removed, ${d.changed} changed, ${d.sizeDelta >= 0 ? '+' : ''}${d.sizeDelta} bytes\n`);
    });
  });

  storeOptions(
    artifact.command('alias').description('Point an alias at a version.').argument('<name>').argument('<alias>').argument('<version>', 'version or another alias'),
  ).action(async (name: string, alias: string, version: string, o: StoreFlags) => {
    await withClient(o, async (c, project) => {
      const { artifact: a } = await c.resolve(project, `${name}:${version}`);
      const v = await c.setAlias(a.id, alias, version);
      process.stdout.write(`${name}:${alias} → ${v.version}\n`);
    });
  });

  storeOptions(
    artifact
      .command('rm')
      .description(
        'Delete a version (name:version), a whole artifact with --all, or many versions at once on the server with --older-than / --keep-last (the latest version and, unless --no-keep-aliased, aliased ones stay). Bodies go at the next gc.',
      )
      .argument('<ref>')
      .option('--all', 'delete the artifact with every version')
      .option('--older-than <age>', 'delete versions older than this: 30d, 12h, 90m, 2w, or an RFC 3339 time')
      .option('--keep-last <n>', 'keep the N newest versions (with --older-than: delete only versions beyond them)')
      .option('--no-keep-aliased', 'also delete versions that have an alias (other than latest)')
      .option('--dry-run', 'only report what would be deleted'),
  ).action(async (ref: string, o: StoreFlags & { all?: boolean; olderThan?: string; keepLast?: string; keepAliased: boolean; dryRun?: boolean }) => {
    await withClient(o, async (c, project) => {
      const { parseArtifactRef } = await import('@wanllmdb/sdk');
      const parsed = parseArtifactRef(ref);
      const a = await c.find(parsed.project ?? project, parsed.name);
      if (!a) throw new Error(`no artifact "${parsed.name}" in project ${parsed.project ?? project}`);
      if (o.olderThan !== undefined || o.keepLast !== undefined) {
        if (o.all || /:[^/:]+$/.test(ref)) throw new Error('--older-than and --keep-last select versions of an artifact: give its name alone, without :version or --all');
        const r = await c.deleteVersions(parsed.project ?? project, parsed.name, {
          ...(o.olderThan !== undefined ? { olderThan: instantOf(o.olderThan, '--older-than') } : {}),
          ...(o.keepLast !== undefined ? { keepLast: wholeNumber(o.keepLast, '--keep-last') } : {}),
          keepAliased: o.keepAliased,
          dryRun: !!o.dryRun,
        });
        process.stdout.write(deletionLine(a.name, r));
        return;
      }
      if (o.all) {
        await c.deleteArtifact(a.id);
        process.stdout.write(`deleted ${a.name} (${a.versionCount} versions)\n`);
        return;
      }
      if (!/:[^/:]+$/.test(ref)) throw new Error(`name the version to delete (${parsed.name}:v3, ${parsed.name}:latest), pass --older-than/--keep-last for many, or --all for the whole artifact`);
      const version = await c.version(a.id, parsed.version);
      await c.deleteVersion(a.id, version.version);
      process.stdout.write(`deleted ${a.name}:${version.version}\n`);
    });
  });

  storeOptions(
    artifact
      .command('retention')
      .description(
        "Show or set an artifact's retention rule (applied after each commit and by gc), a project's default for a type (--type), or apply the rule now (--apply [--dry-run]).",
      )
      .argument('[name]', 'the artifact (leave out with --type)')
      .option('--type <type>', "set the project's default for every artifact of this type that has no rule of its own")
      .option('--keep-last <n>', 'keep the N newest versions (0: no such limit)')
      .option('--max-age <age>', 'delete versions older than this, unless kept otherwise: 7d, 12h, 2w, or seconds (0: no age limit)')
      .option('--no-keep-aliased', 'let the rule delete versions that have an alias (other than latest)')
      .option('--clear', "remove the artifact's own rule (its type's default applies again), or the type's default with --type")
      .option('--apply', 'apply the rule in force now')
      .option('--dry-run', 'with --apply: only report what would be deleted'),
  ).action(async (name: string | undefined, o: StoreFlags & { type?: string; keepLast?: string; maxAge?: string; keepAliased: boolean; clear?: boolean; apply?: boolean; dryRun?: boolean }) => {
    await withClient(o, async (c, project) => {
      const setting = o.keepLast !== undefined || o.maxAge !== undefined || !o.keepAliased;
      const rules = { keepLast: o.keepLast === undefined ? 0 : wholeNumber(o.keepLast, '--keep-last'), maxAgeSeconds: o.maxAge === undefined ? 0 : seconds(o.maxAge, '--max-age'), keepAliased: o.keepAliased };
      if (o.type) {
        if (o.clear) {
          await c.deleteTypeRetention(project, o.type);
          process.stdout.write(`removed the default retention rule for type ${o.type}\n`);
        } else if (setting) {
          process.stdout.write(`type ${o.type}: ${ruleText(await c.setTypeRetention(project, o.type, rules))}\n`);
        } else {
          const all = await c.typeRetention(project);
          for (const r of all) process.stdout.write(`type ${r.type}: ${ruleText(r)}\n`);
          if (!all.length) process.stdout.write('no default retention rules in this project\n');
        }
        return;
      }
      if (!name) throw new Error('name the artifact, or give --type <type> for a project default');
      if (o.clear) await c.deleteRetention(project, name);
      else if (setting) await c.setRetention(project, name, rules);
      if (o.apply) {
        process.stdout.write(deletionLine(name, await c.applyRetention(project, name, { dryRun: !!o.dryRun })));
        return;
      }
      const r = await c.getRetention(project, name);
      process.stdout.write(r.effective ? `${name}: ${ruleText(r.effective)} (${r.source === 'type' ? `default of type ${r.effective.type}` : 'its own rule'})\n` : `${name}: no retention rule\n`);
    });
  });

  storeOptions(
    artifact.command('gc').description('Delete the stored bodies no version or draft needs (site administrators).').option('--dry-run', 'only report what would be reclaimed'),
  ).action(async (o: StoreFlags & { dryRun?: boolean }) => {
    const r = await withClient(o, (c) => c.collectGarbage(!!o.dryRun));
    if (r.retentionVersions) process.stdout.write(`retention rules: ${r.dryRun ? 'would delete' : 'deleted'} ${r.retentionVersions} versions (${mb(r.retentionBytes)} MB of bodies only they used)\n`);
    process.stdout.write(`${r.dryRun ? 'would reclaim' : 'reclaimed'} ${r.deleted} of ${r.blobs} bodies, ${mb(r.bytes)} MB; ${r.draftsExpired} abandoned drafts\n`);
  });

  const cache = artifact.command('cache').description('The local download cache (WANLLMDB_CACHE_DIR, default ~/.cache/wanllmdb/artifacts).');
  cache
    .command('clean')
    .description('Trim the cache to a size, least recently used first (default: empty it).')
    .option('--max-bytes <n>', 'bytes to keep', '0')
    .action(async (o: { maxBytes: string }) => {
      const { defaultCacheDir, trimArtifactCache } = await import('@wanllmdb/sdk');
      const keep = Number(o.maxBytes);
      if (!Number.isSafeInteger(keep) || keep < 0) throw new Error('--max-bytes must be a whole number of bytes, 0 or more');
      const r = await trimArtifactCache(defaultCacheDir(), keep);
      process.stdout.write(`removed ${r.removed} cached files; ${r.files} left, ${mb(r.bytes)} MB\n`);
    });
}
