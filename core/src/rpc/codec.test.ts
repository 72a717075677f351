import { loadContractRoot } from '@wanllmdb/proto';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { checkJson, decodeMessage, encodeMessage, normalize, toJsonForm } from './codec.js';

const root = loadContractRoot();
const create = root.lookupType('wanllmdb.projects.v1.CreateProjectRequest');
const update = root.lookupType('wanllmdb.projects.v1.UpdateProjectRequest');
const withStruct = new protobuf.Root().loadSync('google/protobuf/struct.proto');
const scratch = protobuf.parse(`
  syntax = "proto3";
  package t;
  import "google/protobuf/struct.proto";
  message M { google.protobuf.Value v = 1; map<string, google.protobuf.ListValue> lists = 2; double d = 3; int32 i = 4; repeated string tags = 5; }
`, withStruct, { keepCase: false }).root;
scratch.resolveAll();
const M = scratch.lookupType('t.M');

describe('codec', () => {
  it('carries Struct, Value and ListValue as plain JSON through the wire format', () => {
    const settings = { a: 1, b: { c: [1, 'two', null, { d: true }] }, e: 'z', empty: {}, list: [] };
    expect(decodeMessage(create, encodeMessage(create, { name: 'x', settings })).settings).toEqual(settings);
    const m = { v: [1, { x: 'y' }], lists: { loss: [{ step: 1, value: 0.5 }] } };
    expect(decodeMessage(M, encodeMessage(M, m))).toMatchObject(m);
  });

  it('fills scalar defaults but leaves absent sub-messages and proto3 optionals absent', () => {
    expect(decodeMessage(update, encodeMessage(update, { id: 'a' }))).toEqual({ id: 'a' });
    expect(decodeMessage(update, encodeMessage(update, { id: 'a', name: '' }))).toEqual({ id: 'a', name: '' });
    expect(normalize(create, { name: 'n' })).toEqual({ name: 'n', slug: '', description: '', visibility: '', organizationId: '' });
  });

  it('reports every unknown field and wrong type, accepting snake_case names', () => {
    const { problems, value } = checkJson(M, { d: 'x', i: 2 ** 40, tags: 'a', bogus: 1, v: { any: ['json'] } });
    expect(problems.map((p) => p.field).sort()).toEqual(['bogus', 'd', 'i', 'tags']);
    expect(value.v).toEqual({ any: ['json'] });
    expect(checkJson(create, { name: 'x', settings: 3 }).problems[0]!.field).toBe('settings');
    expect(checkJson(update, { id: 'x', visibility: 'public' }).problems).toEqual([]);
  });

  it('keeps NaN and ±Infinity in JSON as strings', () => {
    const checked = checkJson(M, { d: 'NaN' });
    expect(checked.problems).toEqual([]);
    expect(Number.isNaN(checked.value.d)).toBe(true);
    expect(toJsonForm(M, { d: Number.NEGATIVE_INFINITY }).d).toBe('-Infinity');
    expect(JSON.parse(JSON.stringify(toJsonForm(M, { d: Number.NaN }))).d).toBe('NaN');
  });
});
