// Run with tsx (it imports the TypeScript loader). Generates TypeScript types from the .proto contract (src/gen/), so no
// message shape is written twice. Types describe messages in the object form
// the RPC host hands to handlers: protobufjs toObject with camelCase names,
// longs as numbers, enums as strings, defaults filled, Struct as plain JSON.
//
// A plugin with a contract of its own runs it as
//   tsx node_modules/@wanllmdb/proto/scripts/gen-types.mjs --proto <its proto dir> --out <its src/gen>
// and gets types for its packages only; core's types are imported from @wanllmdb/proto.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import protobuf from 'protobufjs';
import { loadContractRoot } from '../src/load-contract.ts';

const protoDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { proto: { type: 'string' }, out: { type: 'string' } } });
const pluginDir = args.proto ? resolve(args.proto) : undefined;
if (pluginDir && !args.out) throw new Error('gen-types: --proto needs --out <folder for the generated types>');
const outDir = args.out ? resolve(args.out) : join(protoDir, 'src', 'gen');
const root = loadContractRoot(pluginDir ? [{ dir: pluginDir }] : []);
/** Types come from here (a plugin's folder), or from core's contract when generating core. */
const ours = (t) => !pluginDir || (t.filename ?? '').startsWith(pluginDir);
/** A core package as a plugin's generated code names it: `projects.v1.Project` from '@wanllmdb/proto'. */
const corePath = (pkg) => (pkg.startsWith('wanllmdb.') ? pkg.split('.').slice(1) : pkg.split('.'));

const WELL_KNOWN = {
  '.google.protobuf.Struct': 'JsonObject',
  '.google.protobuf.Value': 'JsonValue',
  '.google.protobuf.ListValue': 'JsonValue[]',
  '.google.protobuf.Empty': 'Empty',
};
const SCALARS = {
  string: 'string', bool: 'boolean', bytes: 'Uint8Array',
  double: 'number', float: 'number', int32: 'number', uint32: 'number', sint32: 'number', fixed32: 'number', sfixed32: 'number',
  int64: 'number', uint64: 'number', sint64: 'number', fixed64: 'number', sfixed64: 'number',
};

/** proto package (e.g. wanllmdb.projects.v1) → generated module path (wanllmdb/projects/v1). */
const modulePath = (pkg) => pkg.split('.').join('/');
const packageOf = (t) => {
  const parts = [];
  for (let p = t.parent; p && p.name; p = p.parent) if (p instanceof protobuf.Namespace && !(p instanceof protobuf.Type)) parts.unshift(p.name);
  return parts.join('.');
};
const localName = (t) => {
  const parts = [];
  for (let p = t; p && p instanceof protobuf.Type || p instanceof protobuf.Enum; p = p.parent) parts.unshift(p.name);
  return parts.join('_');
};

const byPackage = new Map();
const collect = (ns) => {
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type || child instanceof protobuf.Enum || child instanceof protobuf.Service) {
      const pkg = packageOf(child);
      if (!pkg.startsWith('wanllmdb.') && pkg !== 'google.api') continue;
      if (!ours(child)) continue;
      if (!byPackage.has(pkg)) byPackage.set(pkg, []);
      byPackage.get(pkg).push(child);
    }
    if (child instanceof protobuf.Namespace) collect(child);
  }
};
collect(root);

/** A method's first (google.api.http) binding: verb, path template, body. */
const httpBinding = (m) => {
  const rule = (m.parsedOptions ?? []).find((o) => '(google.api.http)' in o)?.['(google.api.http)'];
  if (!rule) return undefined;
  for (const verb of ['get', 'post', 'put', 'patch', 'delete']) if (rule[verb]) return { verb: verb.toUpperCase(), path: rule[verb], body: rule.body ?? '' };
  return undefined;
};
const doc = (c, indent = '') => (c ? `${indent}/** ${c.replace(/\*\//g, '*\\/').split('\n').join(`\n${indent} * `)} */\n` : '');
const lowerFirst = (s) => s[0].toLowerCase() + s.slice(1);

rmSync(outDir, { recursive: true, force: true });
const modules = [];
for (const [pkg, items] of [...byPackage.entries()].sort()) {
  const imports = new Map(); // module → Set(names)
  const coreImports = new Set(); // top-level namespaces of @wanllmdb/proto
  let usesJson = false;
  let usesEmpty = false;
  const ref = (t) => {
    if (WELL_KNOWN[t.fullName]) {
      const w = WELL_KNOWN[t.fullName];
      if (w === 'Empty') usesEmpty = true; else usesJson = true;
      return w;
    }
    const p = packageOf(t);
    const name = localName(t);
    if (p === pkg) return name;
    if (!ours(t)) {
      // A core type, in a plugin's generated code.
      const path = corePath(p);
      coreImports.add(path[0]);
      return `${path.join('.')}.${name}`;
    }
    const alias = `${p.split('.').map((s) => s[0].toUpperCase() + s.slice(1)).join('')}_${name}`;
    const mod = modulePath(p);
    if (!imports.has(mod)) imports.set(mod, new Set());
    imports.get(mod).add(`${name} as ${alias}`);
    return alias;
  };
  const typeOf = (f) => {
    const closed = typeof f.options?.['(wanllmdb.api.v1.values)'] === 'string' ? f.options['(wanllmdb.api.v1.values)'].split(',').map((v) => v.trim()) : undefined;
    // A closed set (ADR 0020) is a union of its words; in a request '' means "not given".
    const union = closed && [...closed, ...(f.parent.name.endsWith('Request') ? [''] : [])].map((v) => JSON.stringify(v)).join(' | ');
    let ts = union ? (f.repeated ? `(${union})` : union) : f.resolvedType ? (f.resolvedType instanceof protobuf.Enum ? ref(f.resolvedType) : ref(f.resolvedType)) : SCALARS[f.type];
    if (f.map) return `Record<string, ${ts}>`;
    if (f.repeated) return `${ts}[]`;
    return ts;
  };
  let body = '';
  /** message name → field name → its closed set, emitted as `closedSets` (ADR 0020). */
  const closedSets = {};
  const emit = (t) => {
    if (t instanceof protobuf.Enum) {
      body += doc(t.comment) + `export type ${localName(t)} = ${Object.keys(t.values).map((v) => JSON.stringify(v)).join(' | ')};\n\n`;
    } else if (t instanceof protobuf.Type) {
      body += doc(t.comment) + `export interface ${localName(t)} {\n`;
      for (const f of t.fieldsArray) {
        // Sub-messages and proto3 `optional` scalars may be absent; scalars and lists always have a value.
        const optional = (f.resolvedType instanceof protobuf.Type && !f.repeated && !f.map) || f.options?.proto3_optional || (f.partOf && !f.partOf.name.startsWith('_') );
        body += doc(f.comment, '  ') + `  ${f.name}${optional ? '?' : ''}: ${typeOf(f)};\n`;
        const closed = f.options?.['(wanllmdb.api.v1.values)'];
        if (typeof closed === 'string') (closedSets[localName(t)] ??= {})[f.name] = closed.split(',').map((v) => v.trim());
      }
      body += '}\n\n';
      for (const n of t.nestedArray) emit(n);
    } else if (t instanceof protobuf.Service) {
      const name = t.name;
      body += doc(t.comment) + `export interface ${name}Handlers<Ctx = unknown> {\n`;
      for (const m of t.methodsArray) {
        const req = ref(m.resolvedRequestType);
        const res = ref(m.resolvedResponseType);
        body += doc(m.comment, '  ');
        if (m.requestStream) body += `  ${lowerFirst(m.name)}(requests: AsyncIterable<${req}>, ctx: Ctx): Promise<${res}>;\n`;
        else if (m.responseStream) body += `  ${lowerFirst(m.name)}(request: ${req}, ctx: Ctx, send: StreamSender<${res}>): Promise<void>;\n`;
        else body += `  ${lowerFirst(m.name)}(request: ${req}, ctx: Ctx): Promise<${res}>;\n`;
      }
      body += '}\n\n';
      const methods = {};
      for (const m of t.methodsArray) {
        const kind = m.requestStream ? (m.responseStream ? 'bidi-stream' : 'client-stream') : m.responseStream ? 'server-stream' : 'unary';
        const raw = m.resolvedResponseType?.fullName === '.google.api.HttpBody';
        methods[lowerFirst(m.name)] = { name: m.name, kind, ...(httpBinding(m) ? { http: httpBinding(m) } : {}), ...(raw ? { rawResponse: true } : {}) };
      }
      body += `export const ${name}: ServiceRef<${name}Handlers<any>> = ${JSON.stringify({ fullName: t.fullName.slice(1), methods }, null, 2)};\n\n`;
    }
  };
  for (const t of items) emit(t);
  if (Object.keys(closedSets).length) {
    body += '/** The closed sets of string fields, by message and field (`(wanllmdb.api.v1.values)`; the RPC host enforces them). */\n';
    body += `export const closedSets = ${JSON.stringify(closedSets)} as const;\n\n`;
  }
  const mod = modulePath(pkg);
  const file = join(outDir, `${mod}.ts`);
  const up = relative(dirname(file), join(protoDir, 'src'));
  let head = '// Generated by proto/scripts/gen-types.mjs from the .proto files. Do not edit.\n/* eslint-disable */\n';
  const helpers = pluginDir ? () => '@wanllmdb/proto' : (file) => `${up}/${file}`;
  if (body.includes('ServiceRef') || body.includes('StreamSender')) head += `import type { ServiceRef, StreamSender } from '${helpers('service-ref.js')}';\n`;
  if (usesJson || usesEmpty) head += `import type { ${[usesJson && 'JsonObject, JsonValue', usesEmpty && 'Empty'].filter(Boolean).join(', ')} } from '${helpers('json.js')}';\n`;
  if (coreImports.size) head += `import type { ${[...coreImports].sort().join(', ')} } from '@wanllmdb/proto';\n`;
  for (const [m, names] of [...imports.entries()].sort()) {
    let rel = relative(dirname(file), join(outDir, m));
    if (!rel.startsWith('.')) rel = `./${rel}`;
    head += `import type { ${[...names].sort().join(', ')} } from '${rel}.js';\n`;
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${head}\n${body.trimEnd()}\n`);
  modules.push({ pkg, mod });
}
// One namespace per proto package: `import { projects } from '@wanllmdb/proto'` → projects.v1.Project.
const tree = {};
for (const { pkg, mod } of modules) {
  // wanllmdb.projects.v1 → projects.v1; other packages keep their full path (google.api).
  const parts = pkg.startsWith('wanllmdb.') ? pkg.split('.').slice(1) : pkg.split('.');
  let node = tree;
  for (const p of parts.slice(0, -1)) node = node[p] ??= {};
  node[parts.at(-1)] = mod;
}
let index = '// Generated by proto/scripts/gen-types.mjs. Do not edit.\n';
for (const { mod } of modules) index += `import * as ${mod.replace(/\//g, '_')} from './${mod}.js';\n`;
// Namespaces (not objects), so both values (`projects.v1.ProjectService`) and
// types (`projects.v1.Project`) resolve through them.
const render = (node, indent) =>
  Object.entries(node)
    .map(([k, v]) =>
      typeof v === 'string'
        ? `${indent}export import ${k} = ${v.replace(/\//g, '_')};`
        : `${indent}export namespace ${k} {\n${render(v, indent + '  ')}\n${indent}}`,
    )
    .join('\n');
for (const [top, node] of Object.entries(tree)) {
  if (typeof node === 'string') index += `export import ${top} = ${node.replace(/\//g, '_')};\n`;
  else index += `export namespace ${top} {\n${render(node, '  ')}\n}\n`;
}
writeFileSync(join(outDir, 'index.ts'), index);
console.error(`gen-types: ${modules.length} proto packages → ${relative(process.cwd(), outDir)}`);
