import { describe, expect, it } from 'vitest';
import {
  alignSeries,
  configDiff,
  ema,
  fieldValue,
  flatten,
  groupKeys,
  lastFinite,
  mergeLive,
  niceTicks,
  parseSeries,
  quantile,
  robustRange,
  type Series,
} from './series.js';

const series = (x: number[], value: number[]): Series => ({ runId: 'r', key: 'loss', sampled: false, x, value, min: value.slice(), max: value.slice(), count: value.map(() => 1) });

describe('parseSeries', () => {
  it('decodes the JSON spelling of non-finite numbers and fills missing columns', () => {
    const s = parseSeries({ runId: 'a', key: 'k', x: [0, 1, 2], value: [1, 'NaN', 'Infinity'] });
    expect(s.value[0]).toBe(1);
    expect(Number.isNaN(s.value[1])).toBe(true);
    expect(s.value[2]).toBe(Infinity);
    expect(s.min).toHaveLength(3);
    expect(s.count).toEqual([1, 1, 1]);
    expect(s.sampled).toBe(false);
  });
});

describe('ema', () => {
  it('is the identity at weight 0', () => {
    expect(ema([1, 5, 3], 0)).toEqual([1, 5, 3]);
  });
  it('is debiased: a constant stays constant from the first point', () => {
    const out = ema([2, 2, 2, 2], 0.9);
    for (const v of out) expect(v).toBeCloseTo(2, 10);
  });
  it('smooths a step and skips non-finite values', () => {
    const out = ema([0, NaN, 10, 10], 0.5);
    expect(out[0]).toBe(0);
    expect(Number.isNaN(out[1])).toBe(true);
    // acc = 0.5*0 + 0.5*10 = 5, norm = 0.75 → 6.667
    expect(out[2]).toBeCloseTo(5 / 0.75, 6);
    expect(out[3]!).toBeGreaterThan(out[2]!);
    expect(out[3]!).toBeLessThan(10);
  });
});

describe('robustRange', () => {
  it('ignores outliers beyond the 1st–99th percentile', () => {
    const values = Array.from({ length: 1000 }, (_, i) => i / 1000);
    values[500] = 1e9;
    values[501] = -1e9;
    const [lo, hi] = robustRange([values])!;
    expect(lo).toBeGreaterThan(-0.1);
    expect(hi).toBeLessThan(1.1);
  });
  it('keeps only positive values for a log scale and handles a constant', () => {
    const [lo, hi] = robustRange([[0, -1, 10, 10]], { log: true })!;
    expect(lo).toBeLessThan(10);
    expect(hi).toBeGreaterThan(10);
    expect(lo).toBeGreaterThan(0);
    const [a, b] = robustRange([[3, 3]])!;
    expect(a).toBeLessThan(3);
    expect(b).toBeGreaterThan(3);
    expect(robustRange([[NaN]])).toBeUndefined();
  });
  it('quantile interpolates', () => {
    expect(quantile([0, 10], 0.5)).toBe(5);
    expect(quantile([1, 2, 3], 1)).toBe(3);
  });
  it('is fast on 100 runs × 1,000 buckets', () => {
    const cols = Array.from({ length: 100 }, (_, r) => Array.from({ length: 1000 }, (_, i) => Math.sin(i / 10) + r));
    const t = performance.now();
    robustRange(cols);
    expect(performance.now() - t).toBeLessThan(200);
  });
});

describe('mergeLive', () => {
  it('appends, replaces an equal x and inserts an earlier one', () => {
    const s = series([1, 2, 4], [10, 20, 40]);
    mergeLive(s, { x: [5, 6], value: [50, 60] });
    expect(s.x).toEqual([1, 2, 4, 5, 6]);
    mergeLive(s, { x: [6], value: [61] });
    expect(s.value.at(-1)).toBe(61);
    mergeLive(s, { x: [3], value: [30] });
    expect(s.x).toEqual([1, 2, 3, 4, 5, 6]);
    expect(s.value).toEqual([10, 20, 30, 40, 50, 61]);
    expect(s.min).toEqual([10, 20, 30, 40, 50, 61]);
    expect(s.count).toHaveLength(6);
  });
  it('appends to an empty series and keeps min/max of sampled live buckets', () => {
    const s = series([], []);
    mergeLive(s, { x: [0], value: [1], min: [0.5], max: [2], count: [3] });
    expect(s).toMatchObject({ x: [0], value: [1], min: [0.5], max: [2], count: [3] });
    expect(lastFinite(s.value)).toBe(1);
    expect(lastFinite([1, NaN])).toBe(1);
  });
});

describe('alignSeries', () => {
  it('puts series on the union of their x values with nulls for gaps', () => {
    const a = alignSeries([
      { x: [0, 2], ys: [[1, 3]] },
      { x: [1, 2], ys: [[5, 6], [50, 60]] },
    ]);
    expect(a.x).toEqual([0, 1, 2]);
    expect(a.ys).toEqual([
      [1, null, 3],
      [null, 5, 6],
      [null, 50, 60],
    ]);
    expect(a.snapped).toBe(false);
  });
  it('snaps to a grid when the union is too large, and stays fast for 100 × 1,000', () => {
    const inputs = Array.from({ length: 100 }, (_, r) => {
      const x = Array.from({ length: 1000 }, (_, i) => i * 10 + r * 0.37);
      return { x, ys: [x.map((v) => Math.sin(v))] };
    });
    const t = performance.now();
    const a = alignSeries(inputs, 4000);
    const ms = performance.now() - t;
    expect(a.snapped).toBe(true);
    expect(a.x.length).toBeLessThanOrEqual(4000);
    expect(a.ys).toHaveLength(100);
    expect(a.ys[0]!.filter((v) => v !== null).length).toBeGreaterThan(900);
    expect(ms).toBeLessThan(300);
  });
  it('handles no data', () => {
    expect(alignSeries([{ x: [], ys: [[]] }])).toEqual({ x: [], ys: [[]], snapped: false });
  });
});

describe('run fields', () => {
  it('flattens nested config, arrays as leaves', () => {
    expect(flatten({ lr: 0.1, model: { layers: 4, act: { fn: 'relu' } }, ids: [1, 2] })).toEqual({ lr: 0.1, 'model.layers': 4, 'model.act.fn': 'relu', ids: [1, 2] });
  });
  it('reads config/summary paths, including summary keys with slashes and dots', () => {
    const run = { name: 'x', config: { model: { layers: 4 } }, summary: { 'train/loss': 0.5, 'a.b': 1 } };
    expect(fieldValue(run, 'config.model.layers')).toBe(4);
    expect(fieldValue(run, 'summary.train/loss')).toBe(0.5);
    expect(fieldValue(run, 'summary.a.b')).toBe(1);
    expect(fieldValue(run, 'name')).toBe('x');
    expect(fieldValue(run, 'config.missing')).toBeUndefined();
  });
  it('diffs configs: union of keys, differing rows marked', () => {
    const rows = configDiff([{ lr: 0.1, model: { layers: 4 }, seed: 1 }, { lr: 0.2, model: { layers: 4 } }]);
    expect(rows.map((r) => [r.key, r.differs])).toEqual([
      ['lr', true],
      ['model.layers', false],
      ['seed', true],
    ]);
    expect(rows[2]!.values).toEqual([1, undefined]);
  });
  it('groups keys by prefix with system keys last', () => {
    const groups = groupKeys(['loss', 'train/loss', 'train/acc', 'val/acc', 'system/cpu', '_runtime']);
    expect(groups.map((g) => g.name)).toEqual(['Charts', 'train', 'val', 'System']);
    expect(groups[1]!.keys).toEqual(['train/acc', 'train/loss']);
    expect(groups[3]!.system).toBe(true);
  });
  it('makes nice ticks', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });
});

import { axisScale } from './series.js';
describe('axisScale', () => {
  it('places numbers linearly or on a log scale', () => {
    const a = axisScale([1, 3, undefined, 2]);
    expect(a.kind).toBe('number');
    expect(a.norm(1)).toBe(0);
    expect(a.norm(2)).toBe(0.5);
    expect(a.norm(undefined)).toBeUndefined();
    const l = axisScale([0.001, 0.1, 0.01], true);
    expect(l.norm(0.01)).toBeCloseTo(0.5);
    expect(l.value(0.5)).toBeCloseTo(0.01);
  });
  it('spaces categories evenly, missing values included', () => {
    const c = axisScale(['adam', 'sgd', undefined]);
    expect(c.kind).toBe('category');
    expect(c.categories).toEqual(['adam', 'sgd', '∅']);
    expect(c.norm('sgd')).toBe(0.5);
    expect(axisScale(['only']).norm('only')).toBe(0.5);
  });
});

import { logSplits } from './series.js';
describe('logSplits', () => {
  it('ticks at decades, with 2× and 5× over a short range', () => {
    expect(logSplits(1e-4, 10)).toEqual([1e-4, 1e-3, 1e-2, 0.1, 1, 10]);
    expect(logSplits(0.01, 1)).toEqual([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1]);
    expect(logSplits(3, 4)).toHaveLength(3);
  });
});
